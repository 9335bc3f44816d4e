import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorRun, readAnchor } from '../../src/runs/anchor.js';
import bundleSchema from '../../src/audit/bundle-schema.json' with { type: 'json' };
import { AUDIT_FORMAT, itemEvidence, planDigest, type AuditBundle } from '../../src/audit/bundle.js';
import { buildAuditBundle } from '../../src/audit/build-bundle.js';
import { parseAuditBundle } from '../../src/audit/verify/parse.js';
import { canonicalJson } from '../../src/log/canonical-json.js';
import { appendEntries } from '../../src/log/entry.js';
import { merkleRootHex } from '../../src/log/merkle.js';
import { verifyBundle } from '../../src/audit/verify/pipeline.js';
import { verifyItemEvidence } from '../../src/audit/verify/item-evidence.js';
import { acceptRun } from '../../src/engine/step.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { PlanSchema } from '../../src/plan/schema.js';
import { writeRun } from '../../src/runs/state-store.js';
import { cleanupTempDirs } from '../support/repo.js';
import { clone, copyRun, finishedRun, type FinishedRun } from './bundle-fixture.js';

let run: FinishedRun;
let bundle: AuditBundle;
const validate = new Ajv({ strict: false }).compile(bundleSchema);

beforeAll(async () => {
  run = await finishedRun();
  bundle = await buildAuditBundle(run.store, run.refs, run.runId, { anchor: true, now: Date.now() });
});
afterAll(cleanupTempDirs);

describe('buildAuditBundle on a finished run', () => {
  it('summarises the run from its refs and validates against the JSON Schema', async () => {
    expect(validate(bundle), JSON.stringify(validate.errors)).toBe(true);
    expect(bundle.format).toBe(AUDIT_FORMAT);
    expect(bundle.state).toBe('done');
    expect(bundle.items.map((i) => [i.id, i.status, i.attempts])).toEqual([
      ['edit-alpha', 'done', 1],
      ['edit-beta', 'done', 1],
      ['edit-shared', 'done', 1],
      ['verify', 'done', 1],
    ]);
    expect(bundle.items.find((i) => i.id === 'verify')!.dependsOn).toEqual(['edit-alpha', 'edit-beta', 'edit-shared']);
    for (const item of bundle.items) {
      expect(await run.store.resolveRef(run.refs.patch(run.runId, item.id))).toBe(item.resultRef!.slice(4));
    }
    const planText = readFileSync(join(run.repo, 'plan.json'), 'utf8');
    expect(bundle.planDigest).toBe(
      createHash('sha256')
        .update(canonicalJson(JSON.parse(planText)))
        .digest('hex'),
    );
    expect(bundle.planDigest).toBe(planDigest(planText));
    expect(bundle.root).toBe(merkleRootHex(bundle.entries.map((e) => e.hash)));
    expect(bundle.entries.map((e) => e.seq)).toEqual(bundle.entries.map((_, i) => i));
    expect(bundle.integrationHead).toBe(await run.store.resolveRef(run.refs.integration(run.runId)));
  });

  it('anchors the root in refs/agora/anchors/<run>: anchor.json holds root, count and state commit', async () => {
    const anchor = await readAnchor(run.store, run.refs, run.runId);
    expect(bundle.anchor).toEqual({ kind: 'git-ref', ref: 'refs/agora/anchors/fanout-1-1', commit: anchor!.commit });
    expect(anchor!.record).toEqual({
      runId: run.runId,
      root: bundle.root,
      entries: bundle.entries.length,
      stateCommit: await run.store.resolveRef(run.refs.run(run.runId)),
    });
    expect(bundle.report).toEqual({ intact: true, claim: 'tamper-detecting', guarantee: 'same-repository', terminal: true, failures: [] });
  });

  it('anchoring again is a no-op; another root is refused; a forged existing anchor is refused as tampering', async () => {
    expect(await anchorRun(run.store, run.refs, run.runId, bundle.root, Date.now() + 5000)).toEqual({ status: 'unchanged', commit: bundle.anchor!.commit });
    await expect(anchorRun(run.store, run.refs, run.runId, 'ab'.repeat(32), Date.now())).rejects.toMatchObject({ code: 'anchor-root-mismatch' });

    const forged = await copyRun(run);
    const s = forged.store;
    const blob = await s.writeBlob(
      JSON.stringify({ runId: run.runId, root: 'cd'.repeat(32), entries: bundle.entries.length, stateCommit: bundle.integrationHead }),
    );
    const tree = await s.writeTree([{ mode: '100644', path: 'anchor.json', oid: blob, type: 'blob' }]);
    const commit = await s.writeCommit({ tree, parents: [], message: 'forged\n', author: agoraIdentity(1), committer: agoraIdentity(1) });
    expect(await s.casRef(forged.refs.anchor(run.runId), commit, bundle.anchor!.commit)).toBe(true);
    await expect(anchorRun(s, forged.refs, run.runId, bundle.root, Date.now())).rejects.toMatchObject({ code: 'anchor-conflict' });
    expect(await s.resolveRef(forged.refs.anchor(run.runId))).toBe(commit);
    // The audit of that repository does not move it either; it reports it.
    const audited = await buildAuditBundle(s, forged.refs, run.runId, { anchor: true, now: Date.now() });
    expect(audited.report.intact).toBe(false);
    expect(audited.report.failures.map((f) => f.code)).toContain('anchor-mismatch');
  });

  it('audits an unfinished run and says so, without anchoring it', async () => {
    const open = await copyRun(run);
    const planText = JSON.stringify({
      id: 'open',
      queue: 'default',
      items: [
        { id: 'a', executor: 'command', inputs: { command: 'true' }, depends_on: [], resourceLocks: ['a'] },
        { id: 'b', executor: 'command', inputs: { command: 'true' }, depends_on: ['a'], resourceLocks: ['b'] },
      ],
    });
    const plan = PlanSchema.parse(JSON.parse(planText));
    const base = bundle.base;
    const started = acceptRun(plan, { runId: 'open-1', base, concurrency: 2, now: 1000 });
    const entries = appendEntries(null, 'open-1', started.transitions);
    expect(
      await writeRun(open.store, open.refs, {
        runId: 'open-1',
        prev: null,
        planText,
        state: started.run.state,
        entries,
        transitions: started.transitions,
        now: 1000,
      }),
    ).not.toBeNull();

    const b = await buildAuditBundle(open.store, open.refs, 'open-1', { anchor: true, now: 2000 });
    expect(b.state).toBe('running');
    expect(b.items.map((i) => i.status)).toEqual(['running', 'pending']);
    expect(b.report.failures).toEqual([expect.objectContaining({ code: 'not-terminal' })]);
    expect(b.report).toMatchObject({ intact: true, terminal: false, claim: 'none', guarantee: 'none' });
    expect(b.report.failures.map((f) => f.code)).toEqual(['not-terminal']);
    expect(b.anchor).toBeNull();
    expect(await readAnchor(open.store, open.refs, 'open-1')).toBeNull();
    await expect(anchorRun(open.store, open.refs, 'open-1', b.root, 3000)).rejects.toMatchObject({ code: 'run-not-terminal' });
  });
});

describe('item evidence', () => {
  it("one item's entries check alone against the root with O(log n) proofs", () => {
    const ev = itemEvidence(bundle, 'verify');
    expect(ev.entries.map((e) => (e.entry.kind === 'item' ? e.entry.to : e.entry.kind))).toEqual(['ready', 'running', 'done']);
    for (const e of ev.entries) expect(e.proof.length).toBeLessThanOrEqual(Math.ceil(Math.log2(ev.treeSize)));
    expect(verifyItemEvidence(clone(ev))).toEqual([]);

    const badProof = clone(ev);
    badProof.entries[0]!.proof[0] = 'ff'.repeat(32);
    expect(verifyItemEvidence(badProof).join('\n')).toMatch(/inclusion proof does not lead to root/);
    const badEntry = clone(ev);
    badEntry.entries[1]!.entry.at += 1;
    expect(verifyItemEvidence(badEntry).join('\n')).toMatch(/content hashes to/);
    expect(verifyItemEvidence(clone(ev), 'ee'.repeat(32))).toHaveLength(3);
    expect(() => itemEvidence(bundle, 'nope')).toThrow(/has no item nope/);
  });
});

describe('parseAuditBundle', () => {
  it('reads what buildAuditBundle wrote, and it still verifies', async () => {
    const parsed = parseAuditBundle(JSON.stringify(bundle), 'b.json');
    expect(await verifyBundle(parsed, { store: run.store, refs: run.refs })).toEqual(bundle.report);
  });

  it('refuses bad input with one line naming the file and the problem', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['{not json', 'bundle-invalid', /^b\.json: not JSON/],
      ['[1,2]', 'bundle-invalid', /expected a JSON object/],
      [JSON.stringify({ format: 'something/v1' }), 'bundle-invalid', /format is "something\/v1", expected "agora\.audit\/v1" or "agora\.audit\/v2"/],
      [JSON.stringify({ ...bundle, format: 'agora.audit/v6' }), 'bundle-version', /newer than this agora understands/],
      // v2 records the repository (null for a local run); v1 predates it and has no such field.
      [
        JSON.stringify({ ...bundle, repository: undefined }),
        'bundle-invalid',
        /not a valid agora\.audit\/v2 bundle: \$: must have required property 'repository'/,
      ],
      [JSON.stringify({ ...bundle, format: 'agora.audit/v1' }), 'bundle-invalid', /not a valid agora\.audit\/v1 bundle/],
      [JSON.stringify({ ...bundle, repository: { fullName: 'octo', id: 1 } }), 'bundle-invalid', /\$\.repository/],
      [JSON.stringify({ ...bundle, entries: 'nope' }), 'bundle-invalid', /\$\.entries: must be array/],
      [JSON.stringify({ ...bundle, extra: 1 }), 'bundle-invalid', /additional properties \(extra\)/],
    ];
    // A key given twice: JSON.parse keeps the last, another verifier the first.
    const canonicalText = JSON.stringify(bundle);
    const twiceRoot = canonicalText.replace('"root":', `"root":"${'0'.repeat(64)}","root":`);
    cases.push([
      twiceRoot,
      'bundle-duplicate-key',
      /^b\.json: \$\.root: the key "root" appears twice in one object \(line 1, column \d+ and line 1, column \d+\)/,
    ]);
    const twiceInEntry = canonicalText.replace('"seq":0,', '"seq":0,"seq":0,');
    cases.push([twiceInEntry, 'bundle-duplicate-key', /^b\.json: \$\.entries\[0\]\.seq: the key "seq" appears twice/]);
    for (const [text, code, message] of cases) {
      let caught: unknown;
      try {
        parseAuditBundle(text, 'b.json');
      } catch (error) {
        caught = error;
      }
      expect(caught).toMatchObject({ code });
      expect((caught as Error).message).toMatch(message);
      expect((caught as Error).message).not.toContain('\n');
    }
  });
});
