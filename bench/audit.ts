/**
 * Audit at scale: a synthetic run of 100,000 audit entries (33,333 items, each pending → ready → running →
 * done, plus the run's own two transitions: 100,001 entries). Measures the Merkle root alone, full verification of the bundle
 * (chain + root + replay: order, locks, attempts, summary) and one item's inclusion proofs, with heap and RSS
 * before and after. One JSON line per result. Run: `npx tsx bench/audit.ts [entries]`.
 *
 * The reference, measured in the same run: one sha256 pass over the entries' canonical bytes (each entry
 * serialised as canonical JSON, all of it fed through one hash) — the least any verifier that recomputes the
 * entries' hashes must do. Targets (issue 12): root and full verification each ≤ 3× the reference; peak heap
 * during verification ≤ 1.2× the heap holding the parsed bundle (sampled every 1,000 entries in a separate,
 * untimed run; with --expose-gc the baseline is taken after a collection).
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../src/log/canonical-json.js';
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
    format: 'agora.audit/v2',
    runId: 'bench-1',
    repository: null,
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
console.log(
  JSON.stringify({
    bench: 'audit',
    name: 'setup',
    entries: n,
    items: itemCount,
    gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
    ...memory(),
  }),
);

/** The reference: every entry's canonical bytes through one sha256. */
function sha256Pass(entries: readonly AuditEntry[]): string {
  const h = createHash('sha256');
  for (const e of entries) h.update(canonicalJson(e));
  return h.digest('hex');
}

async function timed(fn: () => unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** The best of `runs` timings (a shared machine's noise only ever adds). */
async function best(runs: number, fn: () => unknown): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < runs; i++) min = Math.min(min, await timed(fn));
  return min;
}

// Warm-up (JIT), then the measured runs.
merkleRootHex(bundle.entries.slice(0, 1000).map((e) => e.hash));
sha256Pass(bundle.entries.slice(0, 1000));
const root = await measure('root', () => merkleRootHex(bundle.entries.map((e) => e.hash)), { entries: n });
if (root !== bundle.root) throw new Error('root differs');
const report = (await measure('verify-full', () => verifyBundle(bundle), { entries: n })) as Awaited<ReturnType<typeof verifyBundle>>;
if (!report.intact) throw new Error(`synthetic bundle did not verify: ${JSON.stringify(report.failures.slice(0, 3))}`);

const refMs = await best(3, () => sha256Pass(bundle.entries));
const rootMs = await best(3, () => merkleRootHex(bundle.entries.map((e) => e.hash)));
const verifyMs = await best(3, () => verifyBundle(bundle));
const ratio = (x: number) => +(x / refMs).toFixed(2);
console.log(
  JSON.stringify({
    bench: 'audit',
    name: 'ratios',
    entries: n,
    sha256PassMs: +refMs.toFixed(1),
    rootMs: +rootMs.toFixed(1),
    verifyMs: +verifyMs.toFixed(1),
    rootOverSha256: ratio(rootMs),
    verifyOverSha256: ratio(verifyMs),
    target: '≤ 3',
  }),
);

// Peak heap during verification: the entries read through a proxy that samples heapUsed every 1,000 reads
// (garbage not yet collected included), and every 10,000 reads after a full collection (what verification
// really holds: with --expose-gc only).
gc();
const held = process.memoryUsage().heapUsed;
let peak = held;
let peakLive = held;
let reads = 0;
const sampled = new Proxy(bundle.entries, {
  get(target, key, receiver) {
    if (typeof key === 'string' && ++reads % 1000 === 0) {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
      if (reads % 10_000 === 0 && typeof (globalThis as { gc?: unknown }).gc === 'function') {
        gc();
        peakLive = Math.max(peakLive, process.memoryUsage().heapUsed);
      }
    }
    return Reflect.get(target, key, receiver) as unknown;
  },
});
const sampledReport = await verifyBundle({ ...bundle, entries: sampled });
peak = Math.max(peak, process.memoryUsage().heapUsed);
if (!sampledReport.intact) throw new Error('the sampled run did not verify');
console.log(
  JSON.stringify({
    bench: 'audit',
    name: 'peak-heap',
    heldMB: +(held / 2 ** 20).toFixed(1),
    peakMB: +(peak / 2 ** 20).toFixed(1),
    peakOverHeld: +(peak / held).toFixed(2),
    peakLiveMB: +(peakLive / 2 ** 20).toFixed(1),
    peakLiveOverHeld: +(peakLive / held).toFixed(2),
    target: '≤ 1.2',
    gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
  }),
);

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
