import { AgoraError } from '../errors.js';
import { idProblem } from '../plan/ids.js';

/**
 * The `<run>` argument of the verbs that read or change a run: a run id as Agora makes them, refused
 * before any ref is named after it (a malformed one would otherwise fail as a ref name the user never typed).
 */
export function runIdArgument(value: string): string {
  // A run id is its plan's id (an id) and a number: with a plan id of 100 characters it is longer than one.
  const made = /^(.+)-[1-9][0-9]*$/.exec(value);
  if (made && idProblem(made[1]!) === undefined) return value;
  const problem = idProblem(value);
  // An AgoraError, not commander's usage error: commander would print the value as it came, escape
  // sequences and all; the CLI's error printer shows control characters as U+FFFD.
  if (problem !== undefined)
    throw new AgoraError('run-id-invalid', `not a run id: ${problem}`, 'run ids look like <plan id>-<n>: `agora orch status` lists them');
  return value;
}
