/**
 * Runs one loaded fixture through the real orchestrator: the plan is submitted to a sandbox repository
 * and served by the same Server, driver, engine and attempt runner as `agora orch run`, with the mock
 * target in place of every worker target. Returns what the run came to, read back from the repository
 * (states, kept logs, the integration head's files, the audit's verdict), for expectations.ts to judge.
 */
import type { OrchConfig } from '../config/types.js';
import { MIN_SECRET_LENGTH } from '../config/secrets.js';
import type { ItemStatus, RunStatus } from '../engine/types.js';
import { blobAtPath } from '../git/paths.js';
import { buildAuditBundle } from '../audit/build-bundle.js';
import { submitPlan } from '../runs/inbox.js';
import { RunRefs } from '../runs/refs.js';
import { Server } from '../runs/server.js';
import { logName, readLog, readRun } from '../runs/state-store.js';
import { WorkspacePool } from '../runs/workspace-pool.js';
import type { Plan } from '../plan/schema.js';
import type { LoadedFixture } from './fixture-load.js';
import { createMockTarget, type MadeCall, type MockCall } from './mock-target.js';
import { createSandbox } from './sandbox.js';

export interface ActualItem {
  state: ItemStatus;
  reason?: string;
  attempts: number;
  /** The last attempt's kept log, or null when none was kept (the item never ran). */
  output: string | null;
  /** The dependency calls its last attempt's mocks made, in the order they were made. */
  calls: Array<Pick<MadeCall, 'subagent' | 'outcome' | 'answer'>>;
}

export interface ActualRun {
  runId: string;
  status: RunStatus;
  items: Record<string, ActualItem>;
  /** The expected paths' content in the integration head (null: no such file). */
  files: Record<string, string | null>;
  /** The audit bundle's verdict (intact, or each failure as `code: message`), and the child attempts its `call` entries record. */
  audit: { intact: boolean; failures: string[]; calls: string[] };
  calls: MockCall[];
}

export interface RunFixtureOptions {
  /** The project: its files on disk are the run's base. */
  projectDir: string;
  config: OrchConfig;
  /** Hears each mocked call as it is made (`--verbose`). */
  onCall?(call: MockCall): void;
  /** How often the server looks for changes when nothing woke it (default 50 ms). */
  pollMs?: number;
}

const decoder = new TextDecoder();

export async function runFixture(loaded: LoadedFixture, opts: RunFixtureOptions): Promise<ActualRun> {
  const sandbox = await createSandbox(opts.projectDir);
  try {
    const { store, base } = sandbox;
    const refs = new RunRefs(opts.config.refNamespace);
    const { plan } = loaded;
    const { runId } = await submitPlan(store, refs, { planText: `${JSON.stringify(plan, null, 2)}\n`, planId: plan.id, base, now: Date.now() });
    const mock = createMockTarget({ mocks: loaded.mocks, calleeMock: loaded.calleeMock, ...(opts.onCall ? { onCall: opts.onCall } : {}) });
    const server = new Server({
      store,
      refs,
      config: opts.config,
      // Every target a plan may name is the mock: no process or container is started.
      targets: { local: mock, docker: mock },
      scratchDir: `${store.gitdir}/agora`,
      workspaces: new WorkspacePool(store, sandbox.workDir),
      environment: placeholderSecrets(plan, opts.config),
      planSecrets: new Set(opts.config.secrets ?? []), // as the CLI's runs: a plan gets only what is offered to it
      clock: Date.now,
      only: runId,
      pollMs: opts.pollMs ?? 50,
    });
    await server.start();
    await server.serve(new AbortController().signal, (s) => {
      const run = s.run(runId);
      return run !== undefined && run.state.status !== 'running' && s.activeRuns === 0;
    });
    const final = await readRun(store, refs, runId);
    if (final === null) throw new Error(`run ${runId} has no state after it was served`);
    const items: Record<string, ActualItem> = {};
    for (const item of Object.values(final.state.items)) {
      const output = item.attempts > 0 ? await readLog(store, final.logsTree, logName(item.id, item.attempts)) : null;
      const calls = mock.made
        .filter((c) => c.itemId === item.id && c.attempt === item.attempts)
        .map(({ subagent, outcome, answer }) => ({ subagent, outcome, answer }));
      items[item.id] = { state: item.status, ...(item.reason !== undefined ? { reason: item.reason } : {}), attempts: item.attempts, output, calls };
    }
    const head = await store.readCommit(final.state.integrationHead);
    const files: Record<string, string | null> = {};
    for (const path of Object.keys(loaded.fixture.expect.files ?? {})) {
      const blob = await blobAtPath(store, head.tree, path);
      files[path] = blob === null ? null : decoder.decode(await store.readBlob(blob));
    }
    const bundle = await buildAuditBundle(store, refs, runId);
    const audit = {
      intact: bundle.report.intact,
      failures: bundle.report.failures.map((f) => `${f.code}: ${f.message}`),
      calls: bundle.entries.flatMap((e) => (e.kind === 'call' ? [e.call] : [])),
    };
    return { runId, status: final.state.status, items, files, audit, calls: [...mock.calls] };
  } finally {
    await sandbox.dispose();
  }
}

/**
 * Mocks need no secrets, but the attempt runner refuses an item whose declared secret is unset: each
 * declared name a real run would find (a subagent's, or one `orch.secrets` offers to the plan's command
 * items) gets a placeholder, long enough to be redacted like a real one; any other fails as it would. The caller's
 * environment is never read, so a real secret cannot reach a fixture's logs.
 */
function placeholderSecrets(plan: Plan, config: OrchConfig): Record<string, string> {
  const names = new Set<string>();
  // As in a real run, a command item finds only the secrets the config offers (config/secrets.ts).
  const offered = new Set(config.secrets ?? []);
  for (const item of plan.items) {
    if (item.executor === 'command' && Array.isArray(item.inputs.secrets))
      for (const n of item.inputs.secrets) if (offered.has(String(n))) names.add(String(n));
    if (item.executor === 'dispatch') for (const n of config.subagents[String(item.inputs.subagent)]?.secrets ?? []) names.add(n);
  }
  const env: Record<string, string> = {};
  for (const name of names) env[name] = `agora-test-placeholder-${name}`.padEnd(MIN_SECRET_LENGTH, '-');
  return env;
}
