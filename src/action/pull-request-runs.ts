import type { GitStore, Oid } from '../git/types.js';
import { readListedRun, unreadableRunText } from '../runs/listed-run.js';
import type { RunRefs } from '../runs/refs.js';
import type { StoredRun } from '../runs/state-store.js';
import { AgoraError } from '../errors.js';

/**
 * The runs a pull request's head must be judged by: those of the nearest plan commit on its first-parent
 * history. Agora names a run on GitHub `<plan path>-<first 12 hex of the plan commit>` and records the
 * plan commit as the run's base; both must hold, so a ref named to look like a run of this commit (any
 * pusher can write refs/agora/*) still has to carry the commit as its base, and then is checked as fully
 * as the real one. The commits above the plan commit are what the run's patches must account for. A ref
 * named for a commit looked at that holds no run fails the look: a gate must not pass by judging fewer
 * runs than were made (someone could overwrite one plan file's run so that only another's is judged).
 */

/** How far below the head a plan commit is looked for. */
export const MAX_DEPTH = 1000;

export interface PullRequestRuns {
  /** The nearest commit that some run started on; null when none within MAX_DEPTH. */
  planCommit: Oid | null;
  runs: StoredRun[];
  /** How many commits were looked at. */
  looked: number;
}

export async function runsOfHead(store: GitStore, refs: RunRefs, head: Oid): Promise<PullRequestRuns> {
  const byShort = new Map<string, string[]>();
  for (const { ref } of await store.listRefs(refs.runsPrefix)) {
    const runId = ref.slice(refs.runsPrefix.length);
    const m = /-([0-9a-f]{12})$/.exec(runId);
    if (!m || runId.includes('/')) continue;
    byShort.set(m[1]!, [...(byShort.get(m[1]!) ?? []), runId]);
  }
  let at: Oid | undefined = head;
  let looked = 0;
  while (at && looked < MAX_DEPTH) {
    looked += 1;
    const candidates = byShort.get(at.slice(0, 12)) ?? [];
    const runs: StoredRun[] = [];
    for (const runId of candidates.sort()) {
      const run = await readListedRun(store, refs, runId, (u) => {
        throw new AgoraError(
          'state-corrupt',
          `${unreadableRunText(u, 'the problem')}; the runs of plan commit ${at!.slice(0, 12)} cannot be judged while it is there`,
          `restore ${u.ref} from a clone that has it, or delete it (git push origin :${u.ref}) if no run of that commit was made under that name`,
        );
      });
      if (run && run.state.base === at) runs.push(run);
    }
    if (runs.length > 0) return { planCommit: at, runs, looked };
    at = (await store.readCommit(at)).parents[0];
  }
  return { planCommit: null, runs: [], looked };
}
