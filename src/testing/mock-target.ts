/**
 * The worker target `agora test` puts in place of every real one (local, docker): instead of starting a
 * process it does what the fixture's mock says, in the workspace the attempt runner materialised
 * (dependency calls made, files written or deleted, output printed, an exit code). Everything around it is
 * the real path a worker's result takes: calls through the attempt's call socket under the orchestrator's
 * rules, the workspace captured into a patch commit, the secret and scope checks, integration, the
 * engine's scheduling and locks, the state chain and its audit entries.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { callThroughSocket } from '../agents/call-socket.js';
import type { CallOutcome, StandInCall, WorkerJob, WorkerResult, WorkerTarget } from '../executors/types.js';
import { errorMessage } from '../errors.js';
import { pathInside } from '../path-inside.js';
import type { ResolvedMock } from './fixture-load.js';
import type { CallExpectation } from './fixture-schema.js';

/** One mocked worker call, as `--verbose` shows it: an item's attempt, or a child attempt a call ran. */
export interface MockCall {
  itemId: string;
  attempt: number;
  /** The child attempt (`fix.1/checker#1`) when a dependency call's mock answered. */
  child?: string;
  /** What the job was given on stdin (a dispatch item's workerInput), or a call's input, if anything. */
  input?: string;
  /** The secrets the job was given (placeholders: agora test never reads the caller's environment for them). */
  secrets?: Record<string, string>;
  mock: ResolvedMock;
}

/** A dependency call a mock made, as the caller was answered. */
export interface MadeCall {
  itemId: string;
  attempt: number;
  subagent: string;
  outcome: NonNullable<CallExpectation['outcome']>;
  answer: string;
}

export interface MockTarget extends WorkerTarget {
  /** Every mocked worker so far, in the order they ran. */
  readonly calls: readonly MockCall[];
  /** Every dependency call a mock made, in the order they were made (a call before those its callee made). */
  readonly made: readonly MadeCall[];
}

export interface MockTargetOptions {
  /** Item id → its mock. */
  mocks: ReadonlyMap<string, ResolvedMock>;
  /** The mock answering a call to `subagent` with `input`. */
  calleeMock(subagent: string, input: unknown): ResolvedMock | undefined;
  /** Hears each mocked worker as it runs. */
  onCall?: (call: MockCall) => void;
}

/** A target answering each job with its item's mock, and each dependency call with its callee's. */
export function createMockTarget(opts: MockTargetOptions): MockTarget {
  const calls: MockCall[] = [];
  const made: MadeCall[] = [];
  const heard = (call: MockCall): void => {
    calls.push(call);
    opts.onCall?.(call);
  };

  /** Makes `mock`'s calls one after another, recording each as its answer comes. */
  async function makeCalls(mock: ResolvedMock, job: WorkerJob, call: (subagent: string, input: unknown) => Promise<CallOutcome>): Promise<void> {
    for (const { subagent, input } of mock.calls) {
      const record: MadeCall = { itemId: job.itemId, attempt: job.attempt, subagent, outcome: 'refused', answer: '' };
      made.push(record); // before the callee's own calls, which are made while this one runs
      const answer = await call(subagent, input ?? {});
      record.outcome = !answer.isError ? 'ok' : answer.refused ? 'refused' : 'failed';
      record.answer = answer.content;
    }
  }

  async function act(mock: ResolvedMock, job: WorkerJob, signal: AbortSignal, call: ((subagent: string, input: unknown) => Promise<CallOutcome>) | undefined) {
    if (signal.aborted) return false;
    await makeCalls(mock, job, call ?? (async () => cannotCall));
    for (const [path, content] of Object.entries(mock.files)) {
      const at = pathInside(job.workspaceDir, path.split('/'), `mock file path (${mock.source})`);
      if (content === null) await rm(at, { force: true });
      else {
        await mkdir(dirname(at), { recursive: true });
        await writeFile(at, content);
      }
    }
    return true;
  }

  return {
    name: 'mock',
    // An agent item's loop is a worker too: a fixture never calls a model.
    standsInForAgents: true,
    calls,
    made,
    async run(job: WorkerJob, signal: AbortSignal): Promise<WorkerResult> {
      const mock = opts.mocks.get(job.itemId);
      if (mock === undefined) {
        // The fixture loader gives every item a mock; reaching this is a bug, reported as the item's failure.
        return { exitCode: null, reason: `no mock for item ${job.itemId}` };
      }
      const secrets = Object.keys(job.secrets).length > 0 ? { secrets: { ...job.secrets } } : {};
      heard({ itemId: job.itemId, attempt: job.attempt, ...(job.stdin !== undefined ? { input: job.stdin } : {}), ...secrets, mock });
      const socket = job.callSocket;
      const viaSocket = socket === undefined ? undefined : (subagent: string, input: unknown) => callOverSocket(socket, subagent, input);
      if (!(await act(mock, job, signal, viaSocket))) return { exitCode: null, reason: 'stopped before the mock ran' };
      if (mock.output !== '') job.log.write(mock.output, 'stdout');
      return { exitCode: mock.exit };
    },
    async answerCall(request: StandInCall): Promise<{ ok: boolean; content: string }> {
      const mock = opts.calleeMock(request.subagent, request.input);
      if (mock === undefined) return { ok: false, content: `agora test: no mock for subagent ${request.subagent}; add mocks.subagents.${request.subagent}` };
      heard({ itemId: request.job.itemId, attempt: request.job.attempt, child: request.id, input: JSON.stringify(request.input ?? {}), mock });
      if (!(await act(mock, request.job, request.signal, request.call))) return { ok: false, content: 'stopped before the mock ran' };
      return { ok: mock.exit === 0, content: mock.exit === 0 ? mock.output : `exit ${mock.exit}\n${mock.output}` };
    },
  };
}

/** What a callee that cannot call on is answered, as `agora call` without a socket would be. */
const cannotCall: CallOutcome = {
  content: 'refused: a command dependency runs as a job without a call socket, so it cannot call on; only an agent dependency can',
  isError: true,
  refused: true,
};

/** A call through the attempt's socket, as `agora call` makes it: refused when no child attempt ran. */
async function callOverSocket(socket: string, subagent: string, input: unknown): Promise<CallOutcome> {
  try {
    const answer = await callThroughSocket(socket, { subagent, input });
    return { content: answer.content, isError: !answer.ok, refused: !answer.ok && answer.child === undefined };
  } catch (e) {
    return { content: `the orchestrator at ${socket} cannot be reached (${errorMessage(e)})`, isError: true, refused: false };
  }
}
