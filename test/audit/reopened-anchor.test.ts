import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAuditBundle } from '../../src/audit/build-bundle.js';
import { verifyBundle } from '../../src/audit/verify/pipeline.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { ANCHOR_FILE, readAnchor, type AnchorFile as AnchorRecord } from '../../src/runs/anchor.js';
import { RunRefs } from '../../src/runs/refs.js';
import { agora, cleanupTempDirs, makeRepo } from '../support/repo.js';
import { copyRun, type FinishedRun } from './bundle-fixture.js';

/**
 * A run that ended, was anchored, and was reopened by a retry holds the anchor of its earlier end until it
 * ends again. Verifying it meanwhile (`agora orch audit` while the retry waits for a serve) must not call
 * the log tampered with: the anchor covers a prefix of it. It is not this log's anchor either (no claim
 * rests on it), and an anchor that is not a prefix of the log still fails.
 */
let run: FinishedRun;

beforeAll(async () => {
  const plan = {
    id: 'ro',
    queue: 'default',
    items: [
      { id: 'a', executor: 'command', inputs: { run: 'exit 3' }, depends_on: [], resourceLocks: ['a.txt'] },
      { id: 'b', executor: 'command', inputs: { run: 'echo b > b.txt' }, depends_on: ['a'], resourceLocks: ['b.txt'] },
    ],
  };
  const repo = makeRepo({ 'plan.json': JSON.stringify(plan) });
  const ran = await agora(repo, ['orch', 'run', 'plan.json']);
  expect(ran.code, ran.stderr).not.toBe(0);
  const audited = await agora(repo, ['orch', 'audit', 'ro-1']);
  expect(audited.code, audited.stderr).toBe(0);
  const retried = await agora(repo, ['orch', 'retry', 'ro-1', 'a']);
  expect(retried.code, retried.stderr).toBe(0);
  run = { repo, runId: 'ro-1', store: await openLocalStore(repo), refs: new RunRefs() };
});

afterAll(cleanupTempDirs);

describe('an anchored run reopened by a retry', () => {
  it('verifies intact while it runs again, its earlier anchor a prefix of the log, and claims nothing from it', async () => {
    const bundle = await buildAuditBundle(run.store, run.refs, run.runId, { anchor: true, now: 1 });
    expect(bundle.state).toBe('running');
    const anchor = (await readAnchor(run.store, run.refs, run.runId))!.record!;
    expect(anchor.entries).toBeLessThan(bundle.entries.length);
    // Only the note that the run has not ended (informational: the report stays intact).
    expect(bundle.report.failures.map((f) => f.code)).toEqual(['not-terminal']);
    expect(bundle.report.intact).toBe(true);
    expect(bundle.report.claim).toBe('none');
    const cli = await agora(run.repo, ['orch', 'audit', run.runId]);
    expect(cli.code, cli.stdout + cli.stderr).toBe(0);
  });

  it.each([
    ['another root over as many entries', (a: AnchorRecord) => ({ ...a, root: 'f'.repeat(64) })],
    ['the right root, but naming a state commit other than the one that held those entries', (a: AnchorRecord, head: string) => ({ ...a, stateCommit: head })],
  ])('fails when its anchor is not of a prefix of its log: %s', async (_, edit) => {
    const r = await copyRun(run);
    const s = r.store;
    const ref = r.refs.anchor(r.runId);
    const old = (await readAnchor(s, r.refs, r.runId))!;
    const record = edit(old.record!, (await s.resolveRef(r.refs.run(r.runId)))!);
    const blob = await s.writeBlob(`${JSON.stringify(record, null, 2)}\n`);
    const tree = await s.writeTree([{ mode: '100644', path: ANCHOR_FILE, oid: blob, type: 'blob' }]);
    const data = await s.readCommit(old.commit);
    const forged = await s.writeCommit({ ...data, tree, parents: [] });
    expect(await s.casRef(ref, forged, old.commit)).toBe(true);
    const bundle = await buildAuditBundle(s, r.refs, r.runId, { now: 1 });
    const report = await verifyBundle(bundle, { store: s, refs: r.refs });
    expect(report.intact).toBe(false);
    expect(report.failures.map((f) => f.code)).toEqual(['not-terminal', 'anchor-mismatch']);
  });
});
