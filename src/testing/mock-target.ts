/**
 * The worker target `agora test` puts in place of every real one (local, docker): instead of starting a
 * process it does what the fixture's mock says, in the workspace the attempt runner materialised (files
 * written or deleted, output printed, an exit code). Everything around it is the real path a worker's
 * result takes: the workspace captured into a patch commit, the secret and scope checks, integration,
 * the engine's scheduling and locks, the state chain and its audit entries.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { WorkerJob, WorkerResult, WorkerTarget } from '../executors/types.js';
import { pathInside } from '../path-inside.js';
import type { ResolvedMock } from './fixture-load.js';

/** One mocked worker call, as `--verbose` shows it. */
export interface MockCall {
  itemId: string;
  attempt: number;
  /** What the job was given on stdin (a dispatch item's workerInput), if anything. */
  input?: string;
  mock: ResolvedMock;
}

export interface MockTarget extends WorkerTarget {
  /** Every call so far, in the order they were made. */
  readonly calls: readonly MockCall[];
}

/** A target answering each job with its item's mock; `onCall` hears each call as it is made. */
export function createMockTarget(mocks: ReadonlyMap<string, ResolvedMock>, onCall?: (call: MockCall) => void): MockTarget {
  const calls: MockCall[] = [];
  return {
    name: 'mock',
    // An agent item's loop is a worker too: a fixture never calls a model.
    standsInForAgents: true,
    calls,
    async run(job: WorkerJob, signal: AbortSignal): Promise<WorkerResult> {
      const mock = mocks.get(job.itemId);
      if (mock === undefined) {
        // The fixture loader gives every item a mock; reaching this is a bug, reported as the item's failure.
        return { exitCode: null, reason: `no mock for item ${job.itemId}` };
      }
      const call: MockCall = { itemId: job.itemId, attempt: job.attempt, ...(job.stdin !== undefined ? { input: job.stdin } : {}), mock };
      calls.push(call);
      onCall?.(call);
      if (signal.aborted) return { exitCode: null, reason: 'stopped before the mock ran' };
      for (const [path, content] of Object.entries(mock.files)) {
        const at = pathInside(job.workspaceDir, path.split('/'), `mock file path (${mock.source})`);
        if (content === null) await rm(at, { force: true });
        else {
          await mkdir(dirname(at), { recursive: true });
          await writeFile(at, content);
        }
      }
      if (mock.output !== '') job.log.write(mock.output, 'stdout');
      return { exitCode: mock.exit };
    },
  };
}
