import { branchRef, mirrorRef } from '../git/refspec.js';
import type { Oid } from '../git/types.js';
import { firstParentChain } from '../git/history.js';
import { trailers } from '../git/trailers.js';
import { checkBranch } from '../runs/branch-check.js';
import type { RunRefs } from '../runs/refs.js';
import { replayPatches, type ReplayConflict } from '../runs/replay.js';
import type { StoredRun } from '../runs/state-store.js';
import type { MirroredGitStore } from './mirrored-store.js';
import { codeSpan, plainText } from './untrusted-markdown.js';

export interface LandArgs {
  store: MirroredGitStore;
  refs: RunRefs;
  /** The finished run (done, with `commits` integration commits above its plan commit). */
  run: Pick<StoredRun, 'runId'> & { state: Pick<StoredRun['state'], 'base' | 'integrationHead' | 'items'> };
  /** The PR branch (on GitHub) the plan commit was pushed to. */
  branch: string;
  commits: number;
  /** Milliseconds: the committer time of replayed commits. */
  now: number;
}

/**
 * Pushes the integration commits onto the branch: a fast-forward of the plan commit, or, when people
 * pushed meanwhile, a replay onto the branch's new head by tree surgery (each push leased on the head it
 * was built on; a branch that keeps moving is tried again, 3 times). A branch that already holds the
 * patches (an earlier try at finishing the run landed them) is left as it is. When a person changed a path a patch
 * changed, nothing is pushed and the note names each such path, its item and the commits that changed it.
 */
export async function landPatches(a: LandArgs): Promise<{ head?: Oid; note: string; refused?: string }> {
  const { store, refs, branch, commits } = a;
  const { state, runId } = a.run;
  const note = landNotes(branch, commits, refs.integration(runId));
  let onto: Oid = state.base;
  for (let tries = 0; tries < 4; tries += 1) {
    let next: Oid = state.integrationHead;
    if (onto !== state.base) {
      const replay = await replayPatches(store, { base: state.base, head: state.integrationHead, onto, now: a.now });
      // The gate goes on the branch's head, where the required check is looked for: it fails there, naming why.
      if (replay.kind === 'diverged') return { head: onto, note: note.rewritten(replay.why) };
      if (replay.kind === 'conflict') return { head: onto, note: note.conflict(replay.conflicts) };
      next = replay.head;
    }
    const pushed = await store.mirror.pushRefs([{ ref: `refs/heads/${branch}`, next, expected: onto }]);
    if (!pushed.ok && pushed.refused !== undefined) {
      // GitHub declined it (a permission, branch protection, a ruleset): pushing again is refused again.
      return { head: onto, refused: pushed.refused, note: note.refused(pushed.refused) };
    }
    if (pushed.ok) return { head: next, note: note.pushed(next, onto === state.base ? null : onto) };
    await store.fetch([mirrorRef(branchRef(branch))]);
    const moved = await store.resolveRef(`refs/heads/${branch}`);
    if (!moved) return { note: note.deleted() };
    // Landed already (an earlier attempt at finishing the run pushed them, then failed later on).
    if (moved === state.integrationHead) return { head: moved, note: note.pushed(moved, null) };
    // Another replica finishing the same run pushed the same replayed commit (content-addressed): landed.
    if (moved === next) return { head: next, note: note.pushed(next, onto === state.base ? null : onto) };
    // An earlier try landed them (replayed onto people's commits, with that try's time, so not `next`),
    // and people may have pushed on top since: the branch holds exactly the run's patches below its head.
    const landed = await landedAt(store, runId, state, commits, moved);
    if (landed) return { head: moved, note: note.pushed(landed.top, landed.onto) };
    onto = moved;
  }
  return { note: note.keptMoving() };
}

/**
 * Where an earlier try landed the run's patches on the branch whose head is `head`: the topmost commit
 * of the run on its first-parent chain (an integration commit names its run in a trailer), when the
 * branch up to it is the plan commit, people's commits and exactly the run's patches (checkBranch). What
 * sits above it is people's, for the gate to judge. Null when the patches are not there.
 */
async function landedAt(
  store: MirroredGitStore,
  runId: string,
  state: LandArgs['run']['state'],
  commits: number,
  head: Oid,
): Promise<{ top: Oid; onto: Oid | null } | null> {
  const found = await firstParentChain(store, state.base, head, MAX_LANDED_WALK);
  if (!found.ok) return null;
  for (const sha of found.chain.reverse()) {
    if (trailers((await store.readCommit(sha)).message).get('Agora-Run') !== runId) continue;
    const held = await checkBranch(store, sha, { runId, base: state.base, items: Object.values(state.items) });
    return held.problems.length === 0 && held.patches === commits ? { top: sha, onto: held.people.at(-1)?.sha ?? null } : null;
  }
  return null;
}

/** How far below a branch's head the patches of an earlier try are looked for. */
const MAX_LANDED_WALK = 10_000;

/**
 * The run check's notes about landing the patches on `branch`. Pure. The branch name, the paths and the
 * reasons come from people (a branch may be named `` x`](https://evil)@team ``), so they are shown as
 * code or plain text (untrusted-markdown.ts).
 */
export function landNotes(branch: string, commits: number, integrationRef: string) {
  const plural = commits === 1 ? '' : 's';
  const were = commits === 1 ? 'was' : 'were';
  const on = codeSpan(branch);
  const kept = `${commits === 1 ? 'it stays' : 'they stay'} at ${codeSpan(integrationRef)}`;
  return {
    rewritten: (why: string) =>
      `${on} was rewritten after the plan commit (${plainText(why)}), so the ${commits} patch commit${plural} ${were} not pushed; ${kept}.`,
    conflict: (conflicts: readonly ReplayConflict[]) =>
      [
        `People changed paths the patches change after the plan commit, so the ${commits} patch commit${plural} ${were} not pushed onto ${on}; ${kept}:`,
        ...conflicts.map(
          (c) =>
            `- ${codeSpan(c.path)}${c.item ? ` (item ${plainText(c.item)})` : ''}, changed by ${c.changedBy.map((x) => x.slice(0, 12)).join(', ') || 'a person'}`,
        ),
      ].join('\n'),
    pushed: (head: Oid, replayedOnto: Oid | null) =>
      `Pushed ${commits} commit${plural} onto ${on}${replayedOnto ? ` replayed by tree surgery onto its head ${replayedOnto.slice(0, 12)} (the branch moved during the run)` : ''} (${head.slice(0, 12)}).`,
    deleted: () => `${on} was deleted during the run, so the ${commits} patch commit${plural} ${were} not pushed; ${kept}.`,
    keptMoving: () => `${on} kept moving while the patches were pushed, so the ${commits} patch commit${plural} ${were} not pushed; ${kept}.`,
    refused: (reason: string) => `GitHub refused the push of the ${commits} patch commit${plural} onto ${on}: ${plainText(reason)}; ${kept}.`,
  };
}
