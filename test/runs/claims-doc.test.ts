import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgoraError } from '../../src/errors.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { ClaimsLedger } from '../../src/runs/claims.js';
import { RunRefs } from '../../src/runs/refs.js';
import type { StoredRun } from '../../src/runs/state-store.js';
import { cleanupTempDirs, git, makeRepo } from '../support/repo.js';

/**
 * The claims ref is movable by anyone who may push, and its run ids become ref names: a document
 * whose entries break their rules is refused whole, with an error naming the ref, the entry and the fix.
 * The bad documents are hand-written commits (git's own plumbing), not made by the code under test.
 */

let repo: string;
let store: LocalGitStore;
const refs = new RunRefs('refs/agora/');
/** The reading run: no items, nothing recorded yet. */
const self = { runId: 'reader', state: { items: {} }, last: null } as unknown as StoredRun;

beforeAll(async () => {
  repo = makeRepo({ 'README.md': 'claims\n' });
  store = await openLocalStore(repo);
});
afterAll(() => cleanupTempDirs());

/** Points the claims ref at a parentless commit whose tree holds `claims.json` with `text`. */
function plant(text: string): void {
  const blob = execFileSync('git', ['hash-object', '-w', '--stdin'], { cwd: repo, input: text, encoding: 'utf8' }).trim();
  const tree = execFileSync('git', ['mktree'], { cwd: repo, input: `100644 blob ${blob}\tclaims.json\n`, encoding: 'utf8' }).trim();
  const commit = git(repo, 'commit-tree', tree, '-m', 'hand-written claims').trim();
  git(repo, 'update-ref', refs.claims, commit);
}

const claim = { run: 'r1', item: 'build', attempt: 1, afterSeq: 3, queue: 'default', locks: ['src', 'resource:db'] };
const wait = { run: 'r2', item: 'test', afterSeq: 0, acceptedAt: 1_700_000_000_000, queue: 'default', locks: [] };

async function refusal(doc: unknown): Promise<AgoraError> {
  plant(typeof doc === 'string' ? doc : JSON.stringify(doc));
  const err = await new ClaimsLedger(store, refs).read(self).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AgoraError);
  const e = err as AgoraError;
  expect(e.code).toBe('claims-corrupt');
  expect(e.message).toContain(refs.claims);
  expect(e.hint).toContain(`git update-ref -d ${refs.claims}`);
  return e;
}

describe('the claims document', () => {
  it('reads a well-formed document (its runs are gone, so nothing in it is live)', async () => {
    plant(JSON.stringify({ version: 1, claims: [claim], waits: [wait] }));
    const read = await new ClaimsLedger(store, refs).read(self);
    expect(read.head).toBe(git(repo, 'rev-parse', refs.claims).trim());
    expect(read.live).toEqual({ version: 1, claims: [], waits: [] });
  });

  it('refuses a run id that is not one Agora makes, naming the entry', async () => {
    const e = await refusal({ version: 1, claims: [claim, { ...claim, run: '../heads/main' }], waits: [] });
    expect(e.message).toContain('claims[1]');
    expect(e.message).toContain('field "run"');
    expect(e.message).toContain('"../heads/main"');
  });

  it('refuses a lock key that breaks the lock-key rule', async () => {
    const e = await refusal({ version: 1, claims: [], waits: [wait, { ...wait, locks: ['src', '/etc/passwd'] }] });
    expect(e.message).toContain('waits[1]');
    expect(e.message).toContain('field "locks"');
    expect(e.message).toContain('absolute');
  });

  it('refuses a queue that is not a string, an item id with a slash, a bad counter and unknown fields', async () => {
    expect((await refusal({ version: 1, claims: [{ ...claim, queue: 5 }], waits: [] })).message).toContain('claims[0] field "queue"');
    expect((await refusal({ version: 1, claims: [{ ...claim, item: 'a/b' }], waits: [] })).message).toContain('claims[0] field "item"');
    expect((await refusal({ version: 1, claims: [{ ...claim, attempt: -2 }], waits: [] })).message).toContain('claims[0] field "attempt"');
    expect((await refusal({ version: 1, claims: [], waits: [{ ...wait, acceptedAt: 'soon' }] })).message).toContain('waits[0] field "acceptedAt"');
    expect((await refusal({ version: 1, claims: [{ ...claim, extra: true }], waits: [] })).message).toContain('claims[0] has unknown field "extra"');
    expect((await refusal({ version: 1, claims: [null], waits: [] })).message).toContain('claims[0] is not a JSON object');
  });

  it('refuses a document that is not JSON, of another version or without its lists', async () => {
    expect((await refusal('{"version":1,')).message).toContain('not JSON');
    expect((await refusal({ version: 2, claims: [], waits: [] })).message).toContain('version 2');
    expect((await refusal({ version: 1, claims: [] })).message).toContain('"waits"');
  });
});
