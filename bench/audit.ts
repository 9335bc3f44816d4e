/**
 * Audit at scale: a synthetic run of 100,000 audit entries (33,333 items, each pending → ready → running →
 * done, plus the run's own two transitions: 100,001 entries). Measures the Merkle root alone, full verification of the bundle
 * (chain + root + replay: order, locks, attempts, summary) and one item's inclusion proofs, with heap and RSS
 * before and after. One JSON line per result. Run: `npx tsx bench/audit.ts [entries]`.
 */
import { createHash } from 'node:crypto';
import { itemEvidence, type AuditBundle, type BundleItem } from '../src/audit/bundle.js';
import { appendEntries, type AuditEntry } from '../src/log/entry.js';
import { merkleRootHex } from '../src/log/merkle.js';
import { verifyBundle } from '../src/audit/verify/pipeline.js';
import { verifyItemEvidence } from '../src/audit/verify/item-evidence.js';
import type { Transition } from '../src/engine/types.js';

const target = Number(process.argv[2] ?? 100_000);
const itemCount = Math.max(1, Math.ceil((target - 2) / 3));
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const base = sha1('base');

function syntheticBundle(): AuditBundle {
  const transitions: Transition[] = [{ kind: 'run', from: 'submitted', to: 'running', at: 0 }];
  const items: BundleItem[] = [];
  let at = 1;
  for (let i = 0; i < itemCount; i++) {
    const id = `item-${i}`;
    const locks = [`src/f${i}.ts`];
    const resultRef = `git:${sha1(id)}`;
    transitions.push({ kind: 'item', itemId: id, from: 'pending', to: 'ready', attempt: 0, at });
    transitions.push({ kind: 'item', itemId: id, from: 'ready', to: 'running', attempt: 1, at, locks, base });
    const startedAt = at;
    at += 1;
    transitions.push({ kind: 'item', itemId: id, from: 'running', to: 'done', attempt: 1, at, resultRef });
    items.push({ id, status: 'done', reason: null, attempts: 1, resultRef, base, startedAt, finishedAt: at, locks, dependsOn: i > 0 ? [`item-${i - 1}`] : [] });
  }
  transitions.push({ kind: 'run', from: 'running', to: 'done', at });
  const entries: AuditEntry[] = appendEntries(null, 'bench-1', transitions);
  return {
    format: 'agora.audit/v1',
    runId: 'bench-1',
    planDigest: sha1('plan'),
    base,
    integrationHead: base,
    state: 'done',
    items,
    entries,
    root: merkleRootHex(entries.map((e) => e.hash)),
    anchor: null,
    signature: null,
    report: { intact: false, claim: 'none', guarantee: 'none', terminal: true, failures: [] },
  };
}

function memory() {
  const m = process.memoryUsage();
  return { heapUsedMB: +(m.heapUsed / 2 ** 20).toFixed(1), rssMB: +(m.rss / 2 ** 20).toFixed(1) };
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function measure(name: string, fn: () => unknown | Promise<unknown>, extra: Record<string, unknown> = {}): Promise<unknown> {
  gc();
  const before = memory();
  const t0 = process.hrtime.bigint();
  const result = await fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const after = memory();
  console.log(JSON.stringify({ bench: 'audit', name, ms: +ms.toFixed(1), before, after, ...extra }));
  return result;
}

const bundle = syntheticBundle();
const n = bundle.entries.length;
console.log(JSON.stringify({ bench: 'audit', name: 'setup', entries: n, items: itemCount, gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function', ...memory() }));

// Warm-up (JIT), then the measured runs.
merkleRootHex(bundle.entries.slice(0, 1000).map((e) => e.hash));
const root = await measure('root', () => merkleRootHex(bundle.entries.map((e) => e.hash)), { entries: n });
if (root !== bundle.root) throw new Error('root differs');
const report = (await measure('verify-full', () => verifyBundle(bundle), { entries: n })) as Awaited<ReturnType<typeof verifyBundle>>;
if (!report.intact) throw new Error(`synthetic bundle did not verify: ${JSON.stringify(report.failures.slice(0, 3))}`);

const id = `item-${Math.floor(itemCount / 2)}`;
const ev = (await measure('item-evidence-build', () => itemEvidence(bundle, id), { item: id })) as ReturnType<typeof itemEvidence>;
const proofHashes = ev.entries.map((e) => e.proof.length);
const problems = (await measure('item-evidence-check', () => verifyItemEvidence(ev), {
  item: id,
  entries: ev.entries.length,
  proofHashesPerEntry: proofHashes,
  log2n: +Math.log2(n).toFixed(2),
  proofBytes: JSON.stringify(ev.entries.map((e) => e.proof)).length,
})) as string[];
if (problems.length > 0) throw new Error(problems.join('\n'));
