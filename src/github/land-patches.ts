import type { Oid } from '../git/types.js';
import type { RunRefs } from '../runs/refs.js';
import { replayPatches } from '../runs/replay.js';
import type { StoredRun } from '../runs/state-store.js';
import type { MirroredGitStore } from './mirrored-store.js';

export interface LandArgs {
  store: MirroredGitStore;
  refs: RunRefs;
  /** The finished run (done, with `commits` integration commits above its plan commit). */
  run: StoredRun;
  /** The PR branch (on GitHub) the plan commit was pushed to. */
  branch: string;
  commits: number;
  /** Milliseconds: the committer time of replayed commits. */
  now: number;
}

/**
 * Pushes the integration commits onto the branch: a fast-forward of the plan commit, or, when people
 * pushed meanwhile, a replay onto the branch's new head by tree surgery (each push leased on the head it
 * was built on; a branch that keeps moving is tried again, 3 times). When a person changed a path a patch
 * changed, nothing is pushed and the note names each such path, its item and the commits that changed it.
 */
export async function landPatches(a: LandArgs): Promise<{ head?: Oid; note: string; refused?: string }> {
  const { store, refs, branch, commits } = a;
  const { state, runId } = a.run;
  const plural = commits === 1 ? '' : 's';
  const kept = `they stay at \`${refs.integration(runId)}\``;
  let onto: Oid = state.base;
  for (let tries = 0; tries < 4; tries += 1) {
    let next: Oid = state.integrationHead;
    if (onto !== state.base) {
      const replay = await replayPatches(store, { base: state.base, head: state.integrationHead, onto, now: a.now });
      if (replay.kind === 'diverged') {
        // The gate goes on the branch's head, where the required check is looked for: it fails there, naming why.
        return { head: onto, note: `\`${branch}\` was rewritten after the plan commit (${replay.why}), so the ${commits} patch commit${plural} were not pushed; ${kept}.` };
      }
      if (replay.kind === 'conflict') {
        const lines = replay.conflicts.map(
          (c) => `- \`${c.path}\`${c.item ? ` (item ${c.item})` : ''}, changed by ${c.changedBy.map((x) => x.slice(0, 12)).join(', ') || 'a person'}`,
        );
        return {
          head: onto,
          note: [`People changed paths the patches change after the plan commit, so the ${commits} patch commit${plural} were not pushed onto \`${branch}\`; ${kept}:`, ...lines].join('\n'),
        };
      }
      next = replay.head;
    }
    const pushed = await store.mirror.pushRefs([{ ref: `refs/heads/${branch}`, next, expected: onto }]);
    if (!pushed.ok && pushed.refused !== undefined) {
      // GitHub declined it (a permission, branch protection, a ruleset): pushing again is refused again.
      return { head: onto, refused: pushed.refused, note: `GitHub refused the push of the ${commits} patch commit${plural} onto \`${branch}\`: ${pushed.refused}; ${kept}.` };
    }
    if (pushed.ok) {
      const how = onto === state.base ? '' : ` replayed by tree surgery onto its head ${onto.slice(0, 12)} (the branch moved during the run)`;
      return { head: next, note: `Pushed ${commits} commit${plural} onto \`${branch}\`${how} (${next.slice(0, 12)}).` };
    }
    await store.fetch([`+refs/heads/${branch}:refs/heads/${branch}`]);
    const moved = await store.resolveRef(`refs/heads/${branch}`);
    if (!moved) return { note: `\`${branch}\` was deleted during the run, so the ${commits} patch commit${plural} were not pushed; ${kept}.` };
    // Landed already (an earlier attempt at finishing the run pushed them, then failed later on).
    if (moved === state.integrationHead) return { head: moved, note: `Pushed ${commits} commit${plural} onto \`${branch}\` (${moved.slice(0, 12)}).` };
    onto = moved;
  }
  return { note: `\`${branch}\` kept moving while the patches were pushed, so the ${commits} patch commit${plural} were not pushed; ${kept}.` };
}
