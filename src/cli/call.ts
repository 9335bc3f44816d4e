import { readFileSync } from 'node:fs';
import { CALL_SOCKET_ENV, callThroughSocket } from '../agents/call-socket.js';
import { AgoraError, errorMessage } from '../errors.js';
import type { Output } from './output.js';

/**
 * `agora call <subagent> --input -|<json>`, run by a command worker: asks the orchestrator, through the
 * socket its attempt was given, to run a dependency of the worker's subagent as a child attempt, and
 * prints the answer. The orchestrator decides whether the call may go ahead.
 */
export async function callVerb(subagent: string, opts: { input: string }, io: Output, environment = process.env): Promise<number> {
  const socket = environment[CALL_SOCKET_ENV];
  if (!socket) {
    throw new AgoraError(
      'call-unavailable',
      `agora call ${subagent}: $${CALL_SOCKET_ENV} is not set, so there is no orchestrator to ask`,
      'run it from the command of a subagent whose config lists this subagent in its dependencies (local target)',
    );
  }
  const text = opts.input === '-' ? readFileSync(0, 'utf8') : opts.input;
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (e) {
    throw new AgoraError(
      'call-unavailable',
      `agora call ${subagent}: the input is not JSON (${errorMessage(e)})`,
      'pass a JSON object with --input \'{"…": …}\', or on stdin with --input -',
    );
  }
  let answer;
  try {
    answer = await callThroughSocket(socket, { subagent, input });
  } catch (e) {
    throw new AgoraError(
      'call-unavailable',
      `agora call ${subagent}: the orchestrator at ${socket} cannot be reached (${errorMessage(e)})`,
      'call only while the attempt that was given this socket runs',
    );
  }
  if (!answer.ok)
    throw new AgoraError('call-refused', `agora call ${subagent}: ${answer.content}`, 'the orchestrator refused or the child attempt failed; see the reason');
  io.out(answer.content);
  return 0;
}
