import { AgoraError } from '../errors.js';
import { runIdProblem } from '../plan/ids.js';

/**
 * The `<run>` argument of the verbs that read or change a run: a run id as Agora makes them, refused
 * before any ref is named after it (a malformed one would otherwise fail as a ref name the user never typed).
 */
export function runIdArgument(value: string): string {
  const problem = runIdProblem(value);
  // An AgoraError, not commander's usage error: commander would print the value as it came, escape
  // sequences and all; the CLI's error printer shows control characters as U+FFFD.
  if (problem !== undefined)
    throw new AgoraError('run-id-invalid', `not a run id: ${problem}`, 'run ids look like <plan id>-<n>: `agora orch status` lists them');
  return value;
}
