import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { diffTrees } from '../../src/git/tree-diff.js';
import { applyTreeChanges } from '../../src/git/tree-edit.js';
import type { Oid } from '../../src/git/types.js';
import { checkBranch, type BranchRun } from '../../src/runs/branch-check.js';
import { integratePatch, recordPatch } from '../../src/runs/patches.js';
import { replayPatches } from '../../src/runs/replay.js';
import { flushWaitingObjects } from '../../src/git/object-database.js';
import { gitSync } from '../git/git-fixtures.js';
import { cleanupTempDirs, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

const RUN = 'run-7';
const NOW = 1_700_000_123_456;

function git(repo: string, args: string[], opts: { input?: string } = {}): string {
  return gitSync(repo, args, opts).trim();
}

/** A repository on `main` whose only commit (the run's plan commit) holds `files`, and a store over it. */
async function makeBase(files: Record<string, string>): Promise<{ repo: string; store: LocalGitStore; base: Oid }> {
  const repo = tempDir('agora-branch-check-');
  git(repo, ['init', '-q', '-b', 'main']);
  for (const [path, content] of Object.entries(files)) write(repo, path, content);
  git(repo, ['add', '--all']);
  git(repo, ['commit', '-q', '--allow-empty', '-m', 'plan']);
  return { repo, store: await openLocalStore(repo), base: git(repo, ['rev-parse', 'HEAD']) };
}

function write(repo: string, path: string, content: string): void {
  mkdirSync(dirname(join(repo, path)), { recursive: true });
  writeFileSync(join(repo, path), content);
}

/**
 * A person's commit on `parent`, made with the git CLI in the working tree: `files` maps a path to its new
 * content, or null to delete it. `message` may carry trailers (a forgery).
 */
async function commitOn(repo: string, parent: Oid, files: Record<string, string | null>, message: string): Promise<Oid> {
  await flushWaitingObjects(); // the store's objects wait in memory: git is another process
  git(repo, ['checkout', '-q', '-f', '--detach', parent]);
  for (const [path, content] of Object.entries(files)) {
    if (content === null) rmSync(join(repo, path));
    else write(repo, path, content);
  }
  git(repo, ['add', '--all']);
  git(repo, ['commit', '-q', '--allow-empty', '-F', '-'], { input: message });
  return git(repo, ['rev-parse', 'HEAD']);
}

/** The patch commit of `item` (parent = the plan commit), recorded the way the driver does. */
async function makePatch(store: LocalGitStore, base: Oid, item: string, files: Record<string, string | null>): Promise<Oid> {
  const baseTree = (await store.readCommit(base)).tree;
  const edits = [];
  for (const [path, content] of Object.entries(files)) {
    edits.push({ path, entry: content === null ? null : { mode: '100644' as const, oid: await store.writeBlob(content) } });
  }
  const tree = await applyTreeChanges(store, baseTree, edits);
  const changes = await diffTrees(store, baseTree, tree);
  const outcome = await recordPatch(store, {
    runId: RUN,
    itemId: item,
    attempt: 1,
    base,
    tree,
    changes,
    locks: Object.keys(files),
    policy: 'fail',
    now: NOW,
  });
  if (!outcome.ok) throw new Error(`fixture patch refused: ${outcome.reason}`);
  return outcome.commit;
}

/** Integration commits for `patches` (item → patch), chained on `onto` in order, the way the driver does. */
async function integrate(store: LocalGitStore, onto: Oid, patches: Array<[string, Oid]>): Promise<Oid[]> {
  const made: Oid[] = [];
  let head = onto;
  for (const [itemId, patch] of patches) {
    const next = await integratePatch(store, { head, patch, runId: RUN, itemId, now: NOW });
    if (next !== head) made.push(next);
    head = next;
  }
  return made;
}

function run(base: Oid, items: BranchRun['items']): BranchRun {
  return { runId: RUN, base, items };
}

function done(id: string, patch: Oid): BranchRun['items'][number] {
  return { id, resultRef: `git:${patch}`, status: 'done' };
}

async function subjectOf(store: LocalGitStore, sha: Oid): Promise<string> {
  return (await store.readCommit(sha)).message.split('\n')[0]!;
}

const short = (sha: Oid) => sha.slice(0, 12);

describe('checkBranch', () => {
  it('passes the plan commit plus one integration commit per changing patch, counting them, with no people', async () => {
    const { store, base } = await makeBase({ 'a.txt': 'a\n', 'b/c.txt': 'c\n', 'gone.txt': 'bye\n' });
    const pa = await makePatch(store, base, 'item-a', { 'a.txt': 'a by item-a\n', 'new/n.txt': 'added\n' });
    const pb = await makePatch(store, base, 'item-b', { 'b/c.txt': 'c by item-b\n', 'gone.txt': null });
    const [ia, ib] = await integrate(store, base, [
      ['item-a', pa],
      ['item-b', pb],
    ]);
    expect(ib).toBeDefined();
    expect((await store.readCommit(ib!)).parents).toEqual([ia]);

    const items = [done('item-a', pa), done('item-b', pb)];
    expect(await checkBranch(store, ib!, run(base, items))).toEqual({ problems: [], people: [], patches: 2 });
    // A branch that holds only the first is one patch short, and the count says so.
    expect(await checkBranch(store, ia!, run(base, items))).toEqual({
      problems: [`the patch of item item-b (${short(pb)}) is not on the branch`],
      people: [],
      patches: 1,
    });
  });

  it("names a person's commit on top of the patches, or between them, by sha and subject", async () => {
    const { repo, store, base } = await makeBase({ 'a.txt': 'a\n', 'b.txt': 'b\n', readme: 'r\n' });
    const pa = await makePatch(store, base, 'item-a', { 'a.txt': 'A\n' });
    const pb = await makePatch(store, base, 'item-b', { 'b.txt': 'B\n' });
    const [ia, ib] = await integrate(store, base, [
      ['item-a', pa],
      ['item-b', pb],
    ]);
    const items = [done('item-a', pa), done('item-b', pb)];

    const top = await commitOn(repo, ib!, { readme: 'pushed after the run\n' }, 'docs: a late fix\n\nbody text');
    expect(await checkBranch(store, top, run(base, items))).toEqual({
      problems: [`commit ${short(top)} ("docs: a late fix") is not an audited patch of run ${RUN}`],
      people: [],
      patches: 2,
    });

    // Between the integration commits: not below the patches either.
    const middle = await commitOn(repo, ia!, { readme: 'in between\n' }, 'squeezed in');
    const [ib2] = await integrate(store, middle, [['item-b', pb]]);
    expect(await checkBranch(store, ib2!, run(base, items))).toEqual({
      problems: [`commit ${short(middle)} ("squeezed in") is not an audited patch of run ${RUN}`],
      people: [],
      patches: 2,
    });
  });

  it("refuses a commit with an integration commit's trailers that changes something else", async () => {
    const { repo, store, base } = await makeBase({ 'a.txt': 'a\n', 'other.txt': 'o\n' });
    const pa = await makePatch(store, base, 'item-a', { 'a.txt': 'A\n' });
    const [ia] = await integrate(store, base, [['item-a', pa]]);
    const message = (await store.readCommit(ia!)).message;
    const subject = await subjectOf(store, ia!);
    const items = [done('item-a', pa)];
    const forgedProblem = (sha: Oid) => `commit ${short(sha)} ("${subject}") names item item-a's patch but does not change what that patch changed`;

    // The same path, other content.
    const other = await commitOn(repo, base, { 'a.txt': 'something else\n' }, message);
    // The patch's change and one more.
    const more = await commitOn(repo, base, { 'a.txt': 'A\n', 'other.txt': 'smuggled\n' }, message);
    // Nothing at all.
    const empty = await commitOn(repo, base, {}, message);
    for (const forged of [other, more, empty]) {
      expect(await checkBranch(store, forged, run(base, items))).toEqual({ problems: [forgedProblem(forged)], people: [], patches: 1 });
    }
    // Control: the same message over the same change, made by hand, passes.
    const honest = await commitOn(repo, base, { 'a.txt': 'A\n' }, message);
    expect(honest).not.toBe(ia);
    expect(await checkBranch(store, honest, run(base, items))).toEqual({ problems: [], people: [], patches: 1 });
  });

  it("passes patches replayed over people's commits, listing those people oldest first", async () => {
    const { repo, store, base } = await makeBase({ 'a.txt': 'a\n', 'b.txt': 'b\n', 'human.txt': 'h\n' });
    const pa = await makePatch(store, base, 'item-a', { 'a.txt': 'A\n' });
    const pb = await makePatch(store, base, 'item-b', { 'b.txt': 'B\n', 'lib/new.ts': 'new\n' });
    const [, ib] = await integrate(store, base, [
      ['item-a', pa],
      ['item-b', pb],
    ]);
    const h1 = await commitOn(repo, base, { 'human.txt': 'h2\n' }, 'human one');
    const h2 = await commitOn(repo, h1, { 'libs/x.ts': 'near lib/, not in it\n' }, 'human two\n\nwith a body');

    const replay = await replayPatches(store, { base, head: ib!, onto: h2, now: NOW });
    if (replay.kind !== 'replayed') throw new Error(`expected a replay, got ${JSON.stringify(replay)}`);
    const items = [done('item-a', pa), done('item-b', pb)];
    expect(await checkBranch(store, replay.head, run(base, items))).toEqual({
      problems: [],
      people: [
        { sha: h1, subject: 'human one' },
        { sha: h2, subject: 'human two' },
      ],
      patches: 2,
    });
  });

  it('names a path that a commit below the patches changes and a patch changes too', async () => {
    const { repo, store, base } = await makeBase({ 'a.txt': 'a\n', 'b.txt': 'b\n', 'calm.txt': 'c\n' });
    const pa = await makePatch(store, base, 'item-a', { 'a.txt': 'A\n' });
    const pb = await makePatch(store, base, 'item-b', { 'b.txt': 'B\n' });
    const items = [done('item-a', pa), done('item-b', pb)];
    // What replayPatches would refuse, built by hand: a person changed b.txt, the patches sit on top.
    const calm = await commitOn(repo, base, { 'calm.txt': 'calm, unrelated\n' }, 'unrelated');
    const clash = await commitOn(repo, calm, { 'b.txt': 'a person wrote b\n' }, 'person edits b');
    const [, ib] = await integrate(store, clash, [
      ['item-a', pa],
      ['item-b', pb],
    ]);
    expect(await checkBranch(store, ib!, run(base, items))).toEqual({
      problems: [`commit ${short(clash)} ("person edits b") changes "b.txt", which a patch of run ${RUN} changes too`],
      people: [{ sha: calm, subject: 'unrelated' }],
      patches: 2,
    });
    // At a directory boundary: the person made a file under `lib`, which the patch makes a file. Laying the
    // patch over it also deletes lib/run.sh, which the patch itself did not: that commit is named as well.
    const { repo: repo2, store: store2, base: base2 } = await makeBase({ 'x.txt': 'x\n' });
    const pt = await makePatch(store2, base2, 'item-t', { lib: 'a file from the patch\n' });
    const dir = await commitOn(repo2, base2, { 'lib/run.sh': 'a directory from a person\n' }, 'lib dir');
    const [it2] = await integrate(store2, dir, [['item-t', pt]]);
    expect(await checkBranch(store2, it2!, run(base2, [done('item-t', pt)]))).toEqual({
      problems: [
        `commit ${short(it2!)} ("${await subjectOf(store2, it2!)}") names item item-t's patch but does not change what that patch changed`,
        `commit ${short(dir)} ("lib dir") changes "lib/run.sh", which a patch of run ${RUN} changes too`,
      ],
      people: [],
      patches: 1,
    });
  });

  it('names a done patch that changed something and is not on the branch; a patch that changed nothing needs no commit', async () => {
    const { store, base } = await makeBase({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const pa = await makePatch(store, base, 'item-a', { 'a.txt': 'A\n' });
    const pb = await makePatch(store, base, 'item-b', { 'b.txt': 'B\n' });
    const pnone = await makePatch(store, base, 'item-none', {});
    expect((await store.readCommit(pnone)).tree).toBe((await store.readCommit(base)).tree);
    const made = await integrate(store, base, [
      ['item-a', pa],
      ['item-none', pnone],
    ]);
    expect(made).toHaveLength(1); // the empty patch adds no integration commit
    const items = [done('item-a', pa), done('item-b', pb), done('item-none', pnone)];
    expect(await checkBranch(store, made[0]!, run(base, items))).toEqual({
      problems: [`the patch of item item-b (${short(pb)}) is not on the branch`],
      people: [],
      patches: 1,
    });
    // Nothing on the branch at all: both changing patches are missing, the empty one is not.
    expect(await checkBranch(store, base, run(base, items))).toEqual({
      problems: [`the patch of item item-a (${short(pa)}) is not on the branch`, `the patch of item item-b (${short(pb)}) is not on the branch`],
      people: [],
      patches: 0,
    });
  });

  it('names the later of two commits carrying the same patch as the repeat', async () => {
    const { repo, store, base } = await makeBase({ 'a.txt': 'a\n' });
    const pa = await makePatch(store, base, 'item-a', { 'a.txt': 'A\n' });
    const pgone = await makePatch(store, base, 'item-gone', { 'a.txt': null });
    const items = [done('item-a', pa), done('item-gone', pgone)];
    // item-a, then item-gone deletes a.txt, then item-a's commit again: each changes what its patch changed.
    const [ia, igone] = await integrate(store, base, [
      ['item-a', pa],
      ['item-gone', pgone],
    ]);
    const again = await commitOn(repo, igone!, { 'a.txt': 'A\n' }, (await store.readCommit(ia!)).message);
    const subject = await subjectOf(store, ia!);
    expect(await checkBranch(store, again, run(base, items))).toEqual({
      problems: [`commit ${short(again)} ("${subject}") repeats the patch of item item-a`],
      people: [],
      patches: 3,
    });
    // Integrated twice in a row: the copy repeats it and, the change being made already, changes nothing.
    const [twice] = await integrate(store, ia!, [['item-a', pa]]);
    expect(await checkBranch(store, twice!, run(base, [done('item-a', pa)]))).toEqual({
      problems: [
        `commit ${short(twice!)} ("${subject}") repeats the patch of item item-a`,
        `commit ${short(twice!)} ("${subject}") names item item-a's patch but does not change what that patch changed`,
      ],
      people: [],
      patches: 2,
    });
  });

  it('says so when the head does not descend from the plan commit', async () => {
    const { repo, store, base } = await makeBase({ 'a.txt': 'a\n' });
    const pa = await makePatch(store, base, 'item-a', { 'a.txt': 'A\n' });
    const items = [done('item-a', pa)];
    // A force-push: the plan commit rewritten, the run's patch integrated on the rewrite.
    git(repo, ['checkout', '-q', '--orphan', 'rewritten', base]);
    git(repo, ['commit', '-q', '-m', 'plan, rewritten']);
    const rewritten = git(repo, ['rev-parse', 'HEAD']);
    expect(rewritten).not.toBe(base);
    const [onRewrite] = await integrate(store, rewritten, [['item-a', pa]]);
    const problem = (head: Oid) => `${short(head)} does not descend from the plan commit ${short(base)}`;
    expect(await checkBranch(store, onRewrite!, run(base, items))).toEqual({ problems: [problem(onRewrite!)], people: [], patches: 0 });
    // A merge that has the plan commit only as its second parent does not descend along first parents.
    git(repo, ['merge', '-q', '--allow-unrelated-histories', '-s', 'ours', '-m', 'merge the plan in', base]);
    const merge = git(repo, ['rev-parse', 'HEAD']);
    expect(await checkBranch(store, merge, run(base, items))).toEqual({ problems: [problem(merge)], people: [], patches: 0 });
  });

  it("refuses a person's commit when the run has no patches on the branch: people stand only under replayed patches", async () => {
    const { repo, store, base } = await makeBase({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const pnone = await makePatch(store, base, 'item-none', {});
    const h = await commitOn(repo, base, { 'b.txt': 'a person\n' }, 'person pushed');
    for (const items of [[], [done('item-none', pnone)]]) {
      expect(await checkBranch(store, h, run(base, items))).toEqual({
        problems: [`commit ${short(h)} ("person pushed") is not an audited patch of run ${RUN}`],
        people: [],
        patches: 0,
      });
    }
  });

  it('does not expect the patches of failed or skipped items, and does not audit their commits as patches', async () => {
    const { store, base } = await makeBase({ 'a.txt': 'a\n', 'b.txt': 'b\n', 'c.txt': 'c\n' });
    const pa = await makePatch(store, base, 'item-a', { 'a.txt': 'A\n' });
    const pfail = await makePatch(store, base, 'item-fail', { 'b.txt': 'B\n' });
    const pskip = await makePatch(store, base, 'item-skip', { 'c.txt': 'C\n' });
    const items: BranchRun['items'] = [
      done('item-a', pa),
      { id: 'item-fail', resultRef: `git:${pfail}`, status: 'failed' },
      { id: 'item-skip', resultRef: `git:${pskip}`, status: 'skipped' },
      { id: 'item-pending', resultRef: null, status: 'done' },
    ];
    const [ia] = await integrate(store, base, [['item-a', pa]]);
    expect(await checkBranch(store, ia!, run(base, items))).toEqual({ problems: [], people: [], patches: 1 });
    // A failed item's patch integrated anyway is no audited patch.
    const [ifail] = await integrate(store, ia!, [['item-fail', pfail]]);
    expect(await checkBranch(store, ifail!, run(base, items))).toEqual({
      problems: [`commit ${short(ifail!)} ("${await subjectOf(store, ifail!)}") is not an audited patch of run ${RUN}`],
      people: [],
      patches: 1,
    });
  });

  it("does not take another run's integration commit for one of this run's", async () => {
    const { store, base } = await makeBase({ 'a.txt': 'a\n' });
    const pa = await makePatch(store, base, 'item-a', { 'a.txt': 'A\n' });
    const foreign = await integratePatch(store, { head: base, patch: pa, runId: 'run-other', itemId: 'item-a', now: NOW });
    expect(await checkBranch(store, foreign, run(base, [done('item-a', pa)]))).toEqual({
      problems: [
        `commit ${short(foreign)} ("item-a: 1 path changed by agora run run-other") is not an audited patch of run ${RUN}`,
        `the patch of item item-a (${short(pa)}) is not on the branch`,
      ],
      people: [],
      patches: 0,
    });
  });
});
