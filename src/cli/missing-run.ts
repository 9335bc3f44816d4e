import { AgoraError, InvalidInputError } from '../errors.js';
import { didYouMean, nearestNames } from '../problems/describe.js';
import { readRejection } from '../runs/inbox.js';
import { serveLockHolder } from '../runs/serve-lock.js';
import type { CliContext } from './context.js';

/**
 * Why a verb that needs a run's state (`logs`, `report`, `retry`, `audit`, …) found none, as `status` sees
 * it: a submission still in the inbox waits for `agora orch serve`, a rejected one has its problems, and
 * anything else is no run at all (with the nearest run ids).
 */
export async function runNotFound(ctx: CliContext, runId: string): Promise<AgoraError> {
  if (await ctx.store.resolveRef(ctx.refs.inbox(runId))) {
    const holder = await serveLockHolder(ctx.store.gitdir);
    return new AgoraError(
      'run-not-accepted',
      `run ${runId} is submitted and waits for \`agora orch serve\` to accept it: it has no state, logs or audit yet`,
      holder === null
        ? `no agora orch serve runs for this repository: start one (\`agora orch serve\`), then ask again`
        : holder.only === undefined
          ? `the agora orch serve running here (pid ${holder.pid}) takes it soon: ask again then (\`agora orch watch ${runId}\` follows it)`
          : `the agora orch run running here (pid ${holder.pid}) serves only its run ${holder.only}; an \`agora orch run\` of ${runId} waits for it, or start \`agora orch serve\` once it ends`,
    );
  }
  const rejected = await readRejection(ctx.store, ctx.refs, runId);
  if (rejected) return new InvalidInputError('plan-rejected', `run ${runId} was rejected by serve`, rejected, 'fix the plan and submit it again');
  const known = (await ctx.store.listRefs(ctx.refs.runsPrefix)).map((r) => r.ref.slice(ctx.refs.runsPrefix.length));
  return new AgoraError(
    'run-not-found',
    `no run ${runId} in this repository${didYouMean(runId, known)}`,
    known.length
      ? `the nearest of its ${known.length} runs: ${nearestNames(runId, known).join(', ')} (\`agora orch status\` lists them all)`
      : 'submit one with `agora orch submit plan.json`',
  );
}

/**
 * The submission of `runId` that an `agora orch run` made is gone, and what is under the id now is another
 * submission's: `cancel` withdrew this one, and the next `submit` was given the id again.
 */
export function replacedSubmission(runId: string): AgoraError {
  return new AgoraError(
    'run-not-found',
    `the submission of ${runId} was withdrawn (agora orch cancel), and another submission took the id since: what is under ${runId} now is not this plan`,
    'submit the plan again to run it (agora orch run <plan>)',
  );
}

/** The submission of `runId` that an `agora orch run` made was withdrawn before a serve accepted it, and nothing is under the id. */
export function withdrawnSubmission(runId: string): AgoraError {
  return new AgoraError(
    'run-not-found',
    `the submission of ${runId} was withdrawn (agora orch cancel) before a serve accepted it`,
    'submit the plan again to run it (agora orch run <plan>)',
  );
}
