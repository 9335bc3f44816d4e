import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditBundle, AuditReport } from '../../src/audit/bundle.js';
import { buildAuditBundle } from '../../src/audit/build-bundle.js';
import { verifyBundle } from '../../src/audit/verify/pipeline.js';
import type { VerifyOptions } from '../../src/audit/verify/options.js';
import { humanReport, jsonReport } from '../../src/cli/audit.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { applyTreeChanges, type PathChange } from '../../src/git/tree-edit.js';
import type { Oid, TreeEntry } from '../../src/git/types.js';
import { canonicalJson } from '../../src/log/canonical-json.js';
import { ANCHOR_FILE } from '../../src/runs/anchor.js';
import { fanoutDepth, itemPath } from '../../src/runs/run-layout.js';
import { stateCommits } from '../../src/runs/run-chain.js';
import { readRunAt } from '../../src/runs/state-store.js';
import { cleanupTempDirs } from '../support/repo.js';
import { clone, copyRun, finishedRun, type FinishedRun } from './bundle-fixture.js';

/**
 * `verify --repo` with no signature: the claim (tamper-detecting, same-repository) rests on the repository
 * alone, so every part of the stored run the bundle speaks for is compared, not only the entries' hashes —
 * a forger who rewrites the state chain and re-anchors it (what push access allows) must not get an intact
 * report for a bundle the repository does not hold.
 */

let run: FinishedRun;
let good: AuditBundle;

beforeAll(async () => {
  run = await finishedRun();
  good = await buildAuditBundle(run.store, run.refs, run.runId, { anchor: true, now: 1 });
});

afterAll(cleanupTempDirs);

const withRepo = (r: FinishedRun): VerifyOptions => ({ store: r.store, refs: r.refs });
const decoder = new TextDecoder();

/** The changes to state commit `k` of the chain; new blobs go into `store`, the copy being forged. */
type Edit = (k: number, commit: Oid, tree: TreeEntry[], last: boolean, store: FinishedRun['store']) => Promise<PathChange[]>;

/**
 * What a forger with push access leaves: every state commit written again with `edit`'s changes, the run ref
 * force-moved to the new head, and a new anchor commit (the same root and count) naming that head. Returns
 * the unsigned bundle that names the new anchor.
 */
async function forge(edit: Edit): Promise<{ r: FinishedRun; bundle: AuditBundle }> {
  const r = await copyRun(run);
  const s = r.store;
  const head = (await s.resolveRef(r.refs.run(r.runId)))!;
  const commits = await stateCommits(s, head);
  let parent: Oid | null = null;
  for (const [k, commit] of commits.entries()) {
    const data = await s.readCommit(commit);
    const tree = await applyTreeChanges(s, data.tree, await edit(k, commit, await s.readTree(data.tree), k === commits.length - 1, s));
    parent = await s.writeCommit({ ...data, tree, parents: parent ? [parent] : [] });
  }
  expect(await s.casRef(r.refs.run(r.runId), parent!, head)).toBe(true);
  const record = { runId: r.runId, root: good.root, entries: good.entries.length, stateCommit: parent! };
  const blob = await s.writeBlob(`${JSON.stringify(record, null, 2)}\n`);
  const anchorTree = await s.writeTree([{ mode: '100644', path: ANCHOR_FILE, oid: blob, type: 'blob' }]);
  const anchor = await s.writeCommit({ tree: anchorTree, parents: [], message: 'agora: anchor\n', author: agoraIdentity(2), committer: agoraIdentity(2) });
  expect(await s.casRef(r.refs.anchor(r.runId), anchor, good.anchor!.commit)).toBe(true);
  const bundle = clone(good);
  bundle.anchor = { kind: 'git-ref', ref: r.refs.anchor(r.runId), commit: anchor };
  return { r, bundle };
}

const blobOf = (tree: TreeEntry[], name: string) => tree.find((e) => e.path === name)!.oid;
const textOf = async (store: FinishedRun['store'], oid: Oid) => decoder.decode(await store.readBlob(oid));
const codes = (report: AuditReport) => report.failures.map((f) => f.code);

/** Entry `seq`'s line rewritten by `change` in the commit that holds it; every other byte kept. */
function editEntry(seq: number, change: (entry: Record<string, unknown>) => string): Edit {
  return async (_k, _commit, tree, _last, store) => {
    const text = await textOf(store, blobOf(tree, 'entries.jsonl'));
    const lines = text.split('\n');
    const i = lines.findIndex((line) => line.length > 0 && (JSON.parse(line) as { seq: number }).seq === seq);
    if (i < 0) return [];
    lines[i] = change(JSON.parse(lines[i]!) as Record<string, unknown>);
    return [{ path: 'entries.jsonl', entry: { mode: '100644', oid: await store.writeBlob(lines.join('\n')) } }];
  };
}

describe('the untouched run', () => {
  it('verifies against its repository (tamper-detecting, same-repository)', async () => {
    expect(await verifyBundle(good, withRepo(run))).toEqual({
      intact: true,
      claim: 'tamper-detecting',
      guarantee: 'same-repository',
      terminal: true,
      failures: [],
    });
  });

  it('and so does a forged chain that changes nothing (the helper alone is no tampering)', async () => {
    const { r, bundle } = await forge(async () => []);
    expect(await verifyBundle(bundle, withRepo(r))).toMatchObject({ intact: true, failures: [] });
  });
});

describe('S1: the stored log is compared by content, not only by hash', () => {
  it('an entry edited in its state commit, its hash kept, fails chain', async () => {
    const { r, bundle } = await forge(editEntry(1, (e) => canonicalJson({ ...e, from: 'banana', at: (e.at as number) + 1 })));
    const report = await verifyBundle(bundle, withRepo(r));
    expect(report.intact).toBe(false);
    const chain = report.failures.find((f) => f.code === 'chain');
    expect(chain).toMatchObject({ entry: 1 });
    expect(chain?.message).toMatch(
      /entry 1 as state commit [0-9a-f]{40} \(\d+ of \d+ on the run ref\) stores it is not the bundle's: it records the same hash, but its content hashes to [0-9a-f]{64}/,
    );
  });

  it("an entry stored with the bundle's content but not as its canonical JSON fails chain", async () => {
    // Keys in another order: the same entry to JSON.parse, other bytes than Agora writes and a verifier hashes.
    const { r, bundle } = await forge(editEntry(2, (e) => JSON.stringify(Object.fromEntries(Object.entries(e).reverse()))));
    const report = await verifyBundle(bundle, withRepo(r));
    expect(report.failures.find((f) => f.code === 'chain')?.message).toMatch(/entry 2 .*the same entry, but not written as its canonical JSON/);
  });

  it('entries.jsonl without its final newline, or with an empty line, fails chain; its entries are still compared', async () => {
    for (const [what, change] of [
      ['no final newline', (text: string) => text.slice(0, -1)],
      ['an empty line', (text: string) => `\n${text}`],
    ] as const) {
      const { r, bundle } = await forge(async (k, _c, tree, _last, store) => {
        if (k !== 1) return [];
        const text = change(await textOf(store, blobOf(tree, 'entries.jsonl')));
        return [{ path: 'entries.jsonl', entry: { mode: '100644', oid: await store.writeBlob(text) } }];
      });
      const report = await verifyBundle(bundle, withRepo(r));
      const chain = report.failures.filter((f) => f.code === 'chain');
      expect(
        chain.map((f) => f.message),
        what,
      ).toEqual([
        expect.stringMatching(/^entries\.jsonl of state commit [0-9a-f]{40} \(2 of \d+ on the run ref\) is not one line per entry, each ended by a newline/),
      ]);
    }
  });

  it('plan.json changed in the head commit only fails plan-digest', async () => {
    const { r, bundle } = await forge(async (_k, _c, tree, last, store) => {
      if (!last) return [];
      const text = (await textOf(store, blobOf(tree, 'plan.json'))).replace('"alpha.ts"', '"gamma.ts"');
      return [{ path: 'plan.json', entry: { mode: '100644', oid: await store.writeBlob(text) } }];
    });
    const report = await verifyBundle(bundle, withRepo(r));
    expect(report.intact).toBe(false);
    expect(report.failures.find((f) => f.code === 'plan-digest')?.message).toMatch(
      /state commit [0-9a-f]{40} \(\d+ of \d+ on the run ref\) holds plan\.json [0-9a-f]{40}, the run's first state commit [0-9a-f]{40} [0-9a-f]{40}: a run's plan is the same blob in every state commit/,
    );
  });

  it('a state commit without entries.jsonl (its entries moved into the next) fails chain', async () => {
    let moved = '';
    const { r, bundle } = await forge(async (k, _c, tree, _last, store) => {
      const text = await textOf(store, blobOf(tree, 'entries.jsonl'));
      if (k === 1) {
        moved = text;
        return [{ path: 'entries.jsonl', entry: null }];
      }
      if (k === 2) return [{ path: 'entries.jsonl', entry: { mode: '100644', oid: await store.writeBlob(moved + text) } }];
      return [];
    });
    expect(moved).not.toBe('');
    const report = await verifyBundle(bundle, withRepo(r));
    expect(report.intact).toBe(false);
    expect(report.failures.find((f) => f.code === 'chain')?.message).toMatch(/state commit [0-9a-f]{40} \(2 of \d+ on the run ref\) holds no entries\.jsonl/);
  });

  it('a state commit with an empty entries.jsonl deleted fails chain too: a missing file is not an empty one', async () => {
    // The first commit's file emptied and its entries moved into the second; then the emptied file deleted.
    let moved = '';
    const { r, bundle } = await forge(async (k, _c, tree, _last, store) => {
      const text = await textOf(store, blobOf(tree, 'entries.jsonl'));
      if (k === 0) moved = text;
      if (k === 0) return [{ path: 'entries.jsonl', entry: null }];
      if (k === 1) return [{ path: 'entries.jsonl', entry: { mode: '100644', oid: await store.writeBlob(moved + text) } }];
      return [];
    });
    const report = await verifyBundle(bundle, withRepo(r));
    expect(codes(report)).toContain('chain');
    expect(report.failures.find((f) => f.code === 'chain')?.message).toMatch(/\(1 of \d+ on the run ref\) holds no entries\.jsonl/);
  });
});

describe('S2: bundle fields the repository can check are checked; the one it cannot is said to be unchecked', () => {
  it("an anchor ref that is not the run's fails anchor-mismatch", async () => {
    const bundle = clone(good);
    bundle.anchor = { ...bundle.anchor!, ref: 'refs/agora/anchors/another-run' };
    const report = await verifyBundle(bundle, withRepo(run));
    expect(report.intact).toBe(false);
    expect(report.failures.find((f) => f.code === 'anchor-mismatch')?.message).toBe(
      `the bundle records anchor ref refs/agora/anchors/another-run, but this run's anchor ref is ${run.refs.anchor(run.runId)}`,
    );
  });

  it("the items in another order than the run's fail state", async () => {
    const bundle = clone(good);
    bundle.items.reverse();
    // The bundle alone has no plan to order them by.
    expect(await verifyBundle(bundle)).toMatchObject({ intact: true });
    const report = await verifyBundle(bundle, withRepo(run));
    expect(report.intact).toBe(false);
    expect(report.failures.find((f) => f.code === 'state')?.message).toMatch(
      new RegExp(`the bundle lists item ${good.items.at(-1)!.id} at position 0, but the run state at [0-9a-f]{40} has ${good.items[0]!.id} there`),
    );
  });

  it('a repository recorded on an unsigned bundle is reported as unchecked: only a signature binds it', async () => {
    const bundle = { ...clone(good), repository: { fullName: 'acme/widgets', id: 4711 } };
    const report = await verifyBundle(bundle, withRepo(run));
    // Intact: everything the claim rests on (the run in this repository and its anchor) checks ...
    expect(report).toMatchObject({ intact: true, claim: 'tamper-detecting', guarantee: 'same-repository' });
    // ... and the report says the repository it records is not part of it.
    const text = humanReport(bundle, report, { repo: true, signature: false, pin: null });
    expect(text).toContain('made in: acme/widgets (GitHub repository id 4711), as the bundle says: unchecked (only a verified signature binds it)');
    expect(humanReport(bundle, report, { repo: true, signature: true, pin: 'key' })).toContain('made in: acme/widgets (GitHub repository id 4711), signed');
    // --json says the same, in a member of its own.
    expect(jsonReport(bundle, report, { repo: true, signature: false, pin: null }).repository).toEqual({ fullName: 'acme/widgets', id: 4711, checked: false });
    expect(jsonReport(bundle, report, { repo: true, signature: true, pin: 'key' }).repository).toEqual({ fullName: 'acme/widgets', id: 4711, checked: true });
    expect(jsonReport(good, report, { repo: true, signature: false, pin: null })).not.toHaveProperty('repository');
  });
});

describe('b5: a first state commit whose items cannot be read is named as such, not as an unreadable plan', () => {
  const duplicate =
    (how: 'twice' | 'misnamed'): Edit =>
    async (k, commit, _tree, _last, store) => {
      if (k !== 0) return [];
      const stored = await readRunAt(store, run.runId, commit);
      const item = Object.values(stored.state.items)[0]!;
      const depth = fanoutDepth(stored.plan.items.length);
      const oid = await store.writeBlob(`${JSON.stringify(item)}\n`);
      // Beside the real blob, at another place in items/ (twice), or under a name that is not its id.
      const path = how === 'twice' ? `items/extra/${item.id}.json` : itemPath(item.id, depth).replace(`${item.id}.json`, 'renamed.json');
      return [{ path, entry: { mode: '100644', oid } }];
    };

  for (const how of ['twice', 'misnamed'] as const) {
    it(`an item blob ${how} in the first commit fails state, naming the commit, and the plan is still checked`, async () => {
      const { r, bundle } = await forge(duplicate(how));
      const report = await verifyBundle(bundle, withRepo(r));
      expect(report.intact).toBe(false);
      expect(codes(report)).not.toContain('plan-digest');
      expect(report.failures.find((f) => f.code === 'state')?.message).toMatch(
        new RegExp(
          `^the run's first state commit [0-9a-f]{40} cannot be read \\(§9\\), so its parameters cannot be compared: .*${how === 'twice' ? 'twice' : 'renamed'}`,
        ),
      );
    });
  }
});
