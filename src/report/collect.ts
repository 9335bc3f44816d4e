import type { AuditBundle } from '../audit/bundle.js';
import { buildAuditBundle } from '../audit/build-bundle.js';
import type { OrchConfig } from '../config/types.js';
import { redactAll } from '../executors/redact.js';
import type { GitStore, Oid } from '../git/types.js';
import { patchCommitOf } from '../log/result-ref.js';
import type { Plan } from '../plan/schema.js';
import type { RunRefs } from '../runs/refs.js';
import { logName, readLog, readRun } from '../runs/state-store.js';
import { patchDiffs } from './diffs.js';
import { DIFF_BYTES, DIFF_LINES, headOf, LOG_TAIL_BYTES, LOG_TAIL_LINES, tailOf, type ReportData, type ReportItem } from './model.js';
import { attemptsOf, lockWaits } from './timeline.js';

export interface CollectOptions {
  config: Pick<OrchConfig, 'subagents'>;
  /** Where the declared secrets' values are looked up, to redact them (the environment of serve). */
  environment: Readonly<Record<string, string | undefined>>;
  now: number;
  /**
   * The run's audit bundle when the caller has just built it (the App's finish): its items, entries and
   * verdict are used instead of building them again. It must be of the run's current state.
   */
  bundle?: AuditBundle;
}

/**
 * Reads everything the report shows of `runId`, or null when the repository has no such run: the state,
 * the audit entries and the verifier's verdict over them (nothing is written: the run is not anchored
 * here), each attempt's log tail and each patch's diff. Logs and reasons were redacted when they were
 * stored; every text is redacted again with the secrets the config and the plan declare, in case one was
 * set only later.
 */
export async function collectReport(store: GitStore, refs: RunRefs, runId: string, o: CollectOptions): Promise<ReportData | null> {
  const stored = await readRun(store, refs, runId);
  if (!stored) return null;
  const bundle = o.bundle ?? (await buildAuditBundle(store, refs, runId, { anchor: false }));
  const { state } = stored;
  const secrets = declaredSecrets(o.config, stored.plan, o.environment);
  const clean = (text: string) => redactAll(text, secrets);
  const commits = new Map<string, Oid>();
  for (const item of bundle.items) {
    const c = item.status === 'done' ? patchCommitOf(item.resultRef) : null;
    if (c) commits.set(item.id, c);
  }
  const diffs = await patchDiffs(store, [...new Set(commits.values())]);
  const items: ReportItem[] = [];
  for (const b of bundle.items) {
    const logs = [];
    for (let attempt = 1; attempt <= b.attempts; attempt++) {
      const text = await readLog(store, stored.logsTree, logName(b.id, attempt));
      if (text !== null) logs.push({ attempt, ...tailOf(clean(text), LOG_TAIL_LINES, LOG_TAIL_BYTES) });
    }
    const commit = commits.get(b.id);
    const diffText = commit ? diffs.get(commit) : undefined;
    items.push({
      id: b.id,
      status: b.status,
      reason: b.reason === null ? null : clean(b.reason),
      attempts: b.attempts,
      dependsOn: b.dependsOn,
      locks: b.locks,
      startedAt: b.startedAt,
      finishedAt: b.finishedAt,
      resultRef: b.resultRef,
      logs,
      diff: commit && diffText !== undefined ? { commit, ...headOf(clean(diffText), DIFF_LINES, DIFF_BYTES) } : null,
    });
  }
  const attempts = attemptsOf(bundle.entries).map((a) => ({ ...a, reason: a.reason === null ? null : clean(a.reason) }));
  return {
    runId,
    planId: stored.plan.id,
    queue: state.queue,
    concurrency: state.concurrency,
    status: state.status,
    reason: state.reason === undefined ? null : clean(state.reason),
    base: state.base,
    integrationHead: state.integrationHead,
    acceptedAt: state.acceptedAt,
    finishedAt: state.finishedAt ?? null,
    head: stored.head,
    items,
    attempts,
    waits: lockWaits(attempts, state.finishedAt ?? o.now),
    verdict: { ...bundle.report, failures: bundle.report.failures.map((f) => ({ ...f, message: clean(f.message) })) },
    parameters: Object.fromEntries(Object.entries(state.params?.values ?? {}).map(([k, v]) => [k, typeof v === 'string' ? clean(v) : v])),
    generatedAt: o.now,
  };
}

/** The values of every secret the config's subagents and the plan's command items declare, where set. */
function declaredSecrets(config: Pick<OrchConfig, 'subagents'>, plan: Plan, environment: Readonly<Record<string, string | undefined>>): string[] {
  const names = new Set<string>();
  for (const s of Object.values(config.subagents)) for (const n of s.secrets ?? []) names.add(n);
  for (const item of plan.items) {
    const declared = item.inputs.secrets;
    if (Array.isArray(declared)) for (const n of declared) if (typeof n === 'string') names.add(n);
  }
  const values: string[] = [];
  for (const n of names) {
    const v = Object.hasOwn(environment, n) ? environment[n] : undefined;
    if (v) values.push(v);
  }
  return values;
}
