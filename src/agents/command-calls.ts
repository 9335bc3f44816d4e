import type { SubagentConfig } from '../config/types.js';
import type { WorkspaceBridge } from '../executors/types.js';
import { CALL_SOCKET_ENV, openCallSocket, type CallAnswer, type CallRequest } from './call-socket.js';
import { CALL_TOOL_PREFIX, type ChildRecord } from './dependency-calls.js';
import { MAX_HOPS_DEFAULT } from './max-hops.js';
import { openDependencyCalls, type CallHost } from './run-agent.js';

/**
 * A command worker's calls to its subagent's dependencies: the call socket, opened for the attempt and
 * closed after it, each request run as a child attempt under the rules an agent's calls follow
 * (declared dependencies, max_hops, the item's remaining time, the downstream budget).
 */

export interface CommandCalls {
  /** What the worker's environment gets: the socket's path. */
  env: Record<string, string>;
  /** For the job's `onWorkspace`: a worker with its own copy of the workspace (a container) has its calls bridged. */
  onWorkspace(bridge: WorkspaceBridge | undefined): void;
  /** The child attempts, once they end (the item's output keeps them). */
  children: ChildRecord[];
  close(): Promise<void>;
}

export async function openCommandCalls(
  host: CallHost,
  name: string,
  subagent: SubagentConfig,
  deadline: number | undefined,
  signal: AbortSignal,
): Promise<CommandCalls> {
  const children: ChildRecord[] = [];
  const frame = {
    chain: [name],
    id: `${host.job.itemId}.${host.job.attempt}`,
    maxHops: subagent.maxHops ?? MAX_HOPS_DEFAULT,
    ...(deadline !== undefined ? { deadline } : {}),
  };
  const calls = openDependencyCalls(host, name, frame, signal, children);
  const run = async (request: CallRequest): Promise<CallAnswer> => {
    const result = await calls.call(`${CALL_TOOL_PREFIX}${request.subagent}`, request.input);
    return { ok: !result.isError, content: result.content, ...(result.child !== undefined ? { child: result.child } : {}) };
  };
  let bridge: WorkspaceBridge | undefined;
  let turn: Promise<unknown> = Promise.resolve();
  const socket = await openCallSocket((request) => {
    const b = bridge;
    if (!b) return run(request);
    // The child works on the host's directory: it gets the container's copy first, and the container its
    // changes after. One call at a time, so that no two copies pass each other.
    const next = turn.then(async () => {
      await b.pull();
      try {
        return await run(request);
      } finally {
        await b.push();
      }
    });
    turn = next.catch(() => undefined);
    return next;
  });
  return {
    env: { [CALL_SOCKET_ENV]: socket.path },
    children,
    onWorkspace: (b) => (bridge = b),
    close: () => socket.close(),
  };
}

/** The API key variable of the first agent `name`'s calls can reach, if any: the one key an item's loops share. */
export function reachableAgentKeyEnv(subagents: Readonly<Record<string, SubagentConfig>>, name: string): string | undefined {
  const seen = new Set<string>();
  const queue = [...(subagents[name]?.dependencies ?? [])];
  while (queue.length > 0) {
    const next = queue.shift()!;
    if (seen.has(next)) continue;
    seen.add(next);
    const sub = subagents[next];
    if (sub?.agent) return sub.agent.apiKeyEnv;
    queue.push(...(sub?.dependencies ?? []));
  }
  return undefined;
}
