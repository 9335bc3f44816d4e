import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git, startWorld, type World } from '@agora/github-sim/harness';
import { landPatches, type LandArgs } from '../../src/github/land-patches.js';
import { MirroredGitStore } from '../../src/github/mirrored-store.js';
import { RemoteMirror } from '../../src/github/remote-sync.js';
import { branchRef, mirrorRef } from '../../src/git/refspec.js';
import { diffTrees } from '../../src/git/tree-diff.js';
import { applyTreeChanges } from '../../src/git/tree-edit.js';
import type { Oid } from '../../src/git/types.js';
import { integratePatch, recordPatch } from '../../src/runs/patches.js';
import { RunRefs } from '../../src/runs/refs.js';

const RUN = 'land-1';
const NOW = 1_700_000_123_456;

/** Landing a finished run's patches on a PR branch that people pushed to during the run, against the simulator's git server. */
describe('landing the patches', () => {
  let w: World;
  let dir: string;
  beforeAll(async () => {
    w = await startWorld();
    dir = await mkdtemp(join(tmpdir(), 'agora-land-'));
  });
  afterAll(async () => {
    await w?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A run on `branch` whose one item changed `a.txt`: its plan commit is the branch's head on GitHub. */
  async function finishedRun(branch: string): Promise<LandArgs> {
    const base = await w.sim.push(w.repo.fullName, { branch, files: { 'plan.json': '{}\n', 'a.txt': 'old\n' }, message: 'Plan' });
    const store = new MirroredGitStore(await RemoteMirror.open(join(dir, branch), `${w.sim.gitUrl}/${w.repo.fullName}.git`, () => w.token()), 'refs/agora/');
    await store.fetch([mirrorRef(branchRef(branch))]);
    const baseTree = (await store.readCommit(base)).tree;
    const tree = await applyTreeChanges(store, baseTree, [{ path: 'a.txt', entry: { mode: '100644', oid: await store.writeBlob('from-agora\n') } }]);
    const changes = await diffTrees(store, baseTree, tree);
    const patch = await recordPatch(store, { runId: RUN, itemId: 'write-a', attempt: 1, base, tree, changes, locks: ['a.txt'], policy: 'fail', now: NOW });
    if (!patch.ok) throw new Error(`fixture patch refused: ${patch.reason}`);
    const integrationHead = await integratePatch(store, { head: base, patch: patch.commit, runId: RUN, itemId: 'write-a', now: NOW });
    const items = { 'write-a': { id: 'write-a', status: 'done' as const, attempts: 1, failures: 0, resultRef: `git:${patch.commit}` } };
    return { store, refs: new RunRefs('refs/agora/'), run: { runId: RUN, state: { base, integrationHead, items } }, branch, commits: 1, now: NOW };
  }

  const headOf = async (branch: string): Promise<Oid> => (await git(['rev-parse', branchRef(branch)], w.sim.repoDir(w.repo.fullName))).trim();

  it('replays them onto what people pushed; a second try at finishing the run finds them landed and pushes nothing', async () => {
    const args = await finishedRun('moving');
    const human = await w.sim.push(w.repo.fullName, { branch: 'moving', files: { 'README.md': 'edited\n' }, message: 'Fix the README', author: 'octo' });

    const first = await landPatches({ ...args, now: NOW + 60_000 });
    expect(first.note).toContain(`replayed by tree surgery onto its head ${human.slice(0, 12)}`);
    expect(first.head).toBe(await headOf('moving'));
    expect(first.head).not.toBe(args.run.state.integrationHead);

    // Finishing again later (a refused release push retried, or a sweep after the App died): the replay
    // would now carry another committer time, so it is not the commit that landed.
    const again = await landPatches({ ...args, now: NOW + 120_000 });
    expect(again).toEqual({ head: first.head, note: first.note });
    expect(await headOf('moving')).toBe(first.head);
  });

  it('a later try finds them landed below a commit someone pushed on top since, and leaves that commit to the gate', async () => {
    const args = await finishedRun('on-top');
    const human = await w.sim.push(w.repo.fullName, { branch: 'on-top', files: { 'README.md': 'edited\n' }, message: 'Fix the README', author: 'octo' });
    const first = await landPatches({ ...args, now: NOW + 60_000 });
    const above = await w.sim.push(w.repo.fullName, { branch: 'on-top', files: { 'CHANGELOG.md': 'more\n' }, message: 'After the patches', author: 'octo' });

    const again = await landPatches({ ...args, now: NOW + 120_000 });
    expect(again).toEqual({ head: above, note: first.note });
    expect(again.note).toContain(`replayed by tree surgery onto its head ${human.slice(0, 12)}`);
    expect(await headOf('on-top')).toBe(above);
  });

  it("still names a person's clash with a patched path", async () => {
    const args = await finishedRun('clash');
    const human = await w.sim.push(w.repo.fullName, { branch: 'clash', files: { 'a.txt': 'by hand\n' }, message: 'Edit a.txt', author: 'octo' });
    const landed = await landPatches(args);
    expect(landed.head).toBe(human);
    expect(landed.note).toContain('People changed paths the patches change');
    expect(landed.note).toContain(human.slice(0, 12));
    expect(await headOf('clash')).toBe(human);
  });
});
