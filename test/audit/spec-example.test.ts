import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { auditStatement, bundleDigest, paramsDigest, planDigest } from '../../src/audit/bundle.js';
import { statementPayload } from '../../src/audit/statement.js';
import { parseAuditBundle } from '../../src/audit/verify/parse.js';
import { verifyBundle } from '../../src/audit/verify/pipeline.js';
import { canonicalJson } from '../../src/log/canonical-json.js';
import { entryHash, GENESIS_HASH } from '../../src/log/entry.js';
import { fromHex, leafHash, merkleRootHex, nodeHash, toHex } from '../../src/log/merkle.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { PlanSchema } from '../../src/plan/schema.js';
import { emittedItemDigest } from '../../src/runs/emit.js';
import { RunRefs } from '../../src/runs/refs.js';
import { readRunAt, writeNewRun, writeRun } from '../../src/runs/state-store.js';
import { cleanupTempDirs, git, makeRepo, ROOT } from '../support/repo.js';

/**
 * docs/audit.md §12, the worked example, read from the document itself and checked against the code: every
 * canonical body, entry hash, Merkle node, digest, the statement's bytes and the state commit's paths. Edit one and this fails, so the
 * specification cannot drift from what `agora verify` does.
 */

afterAll(cleanupTempDirs);

const doc = readFileSync(join(ROOT, 'docs/audit.md'), 'utf8');

/** The fenced block right after `<!-- spec-example:NAME -->`. */
function block(name: string): string {
  const m = new RegExp(`<!-- spec-example:${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  if (!m) throw new Error(`docs/audit.md has no spec-example:${name} block`);
  return m[1] as string;
}

/** `name value` lines → a map. */
function pairs(text: string): Map<string, string> {
  return new Map(text.split('\n').map((l) => l.split(' ') as [string, string]));
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const bundle = parseAuditBundle(block('bundle'), 'docs/audit.md §12');

describe('docs/audit.md §12, the worked example', () => {
  it('lists each entry as canonical body then sha256(body ‖ prevHash), chained from the genesis value', () => {
    const lines = block('entries').split('\n');
    expect(lines).toHaveLength(bundle.entries.length * 2);
    let prev = GENESIS_HASH;
    bundle.entries.forEach((entry, i) => {
      const { hash, ...body } = entry;
      const shownBody = lines[2 * i] as string;
      const shownHash = (lines[2 * i + 1] as string).replace(/^hash /, '');
      expect(canonicalJson(body)).toBe(shownBody);
      expect(JSON.parse(shownBody).prevHash).toBe(prev);
      // By hand, as the document says: the body's bytes, then prevHash's 64 hex characters.
      expect(sha256(shownBody + prev)).toBe(shownHash);
      expect(entryHash(body)).toBe(shownHash);
      expect(hash).toBe(shownHash);
      prev = shownHash;
    });
  });

  it('shows the RFC 6962 tree of five leaves: split at four, the fifth leaf hashed in one level up', () => {
    const t = pairs(block('tree'));
    const raw = bundle.entries.map((e) => fromHex(e.hash));
    const leaves = raw.map((r) => leafHash(r));
    leaves.forEach((l, i) => {
      expect(toHex(l)).toBe(t.get(`l${i}`));
      expect(sha256(Buffer.concat([Buffer.from([0]), raw[i] as Uint8Array]))).toBe(t.get(`l${i}`));
    });
    const node = (a: string, b: string) => sha256(Buffer.concat([Buffer.from([1]), Buffer.from(a, 'hex'), Buffer.from(b, 'hex')]));
    expect(node(t.get('l0')!, t.get('l1')!)).toBe(t.get('n01'));
    expect(node(t.get('l2')!, t.get('l3')!)).toBe(t.get('n23'));
    expect(node(t.get('n01')!, t.get('n23')!)).toBe(t.get('n03'));
    expect(node(t.get('n03')!, t.get('l4')!)).toBe(t.get('root'));
    expect(toHex(nodeHash(fromHex(t.get('n03')!), leaves[4]!))).toBe(t.get('root'));
    expect(merkleRootHex(bundle.entries.map((e) => e.hash))).toBe(t.get('root'));
    expect(bundle.root).toBe(t.get('root'));
  });

  it('gives the plan digest, the bundle digest and the statement payload the code computes', () => {
    const d = pairs(block('digests'));
    expect(planDigest(block('plan'))).toBe(d.get('planDigest'));
    expect(bundle.planDigest).toBe(d.get('planDigest'));
    expect(bundleDigest(bundle)).toBe(d.get('bundleDigest'));
    expect(sha256(canonicalJson({ ...bundle, signature: null, report: null }))).toBe(d.get('bundleDigest'));
    expect(statementPayload(auditStatement(bundle)).toString('utf8')).toBe(block('statement'));
  });

  it('verifies as the document says: intact, claim none; one changed byte breaks the chain and the root', async () => {
    expect(await verifyBundle(bundle)).toEqual({ intact: true, claim: 'none', guarantee: 'none', terminal: true, failures: [] });
    const edited = parseAuditBundle(block('bundle').replace('"at": 1001', '"at": 1009'), 'edited');
    const codes = new Set((await verifyBundle(edited)).failures.map((f) => f.code));
    expect(codes).toEqual(new Set(['chain', 'state']));
    const rehashed = parseAuditBundle(block('bundle'), 'x');
    rehashed.entries[2]!.at = 1009;
    const { hash: _h, ...body } = rehashed.entries[2]!;
    rehashed.entries[2]!.hash = entryHash(body);
    const codes2 = new Set((await verifyBundle(rehashed)).failures.map((f) => f.code));
    expect(codes2.has('chain')).toBe(true); // entry 3 no longer links to it
    expect(codes2.has('root-mismatch')).toBe(true);
  });
  it('lays the run out in the repository as §9 and the example show (layout 2)', async () => {
    const repo = makeRepo({});
    const store = await openLocalStore(repo);
    const refs = new RunRefs();
    const planText = block('plan');
    const plan = PlanSchema.parse(JSON.parse(planText));
    const first = (await writeNewRun(store, refs, { runId: 'demo-1', plan, planText, base: bundle.base, concurrency: 1, now: 1000 }))!;
    const hello = {
      id: 'hello',
      status: 'done' as const,
      attempts: 1,
      failures: 0,
      resultRef: bundle.items[0]!.resultRef!,
      base: bundle.base,
      startedAt: 1001,
      finishedAt: 1002,
    };
    const state = { ...first.state, status: 'done' as const, finishedAt: 1002, integrationHead: bundle.integrationHead, items: { hello } };
    const log = await store.writeBlob('hi\n');
    const last = (await writeRun(store, refs, {
      runId: 'demo-1',
      prev: first,
      state,
      entries: bundle.entries.slice(3),
      transitions: [],
      logs: [{ name: 'hello.1.log', oid: log }],
      now: 1002,
    }))!;
    expect(git(repo, 'ls-tree', '-r', '--name-only', last.head).trim()).toBe(block('layout'));
    expect(sha256('hello').slice(0, 1)).toBe('2');
    expect(sha256('hello.1.log').slice(0, 1)).toBe('5');
    expect(JSON.parse(git(repo, 'show', `${last.head}:run.json`))).toMatchObject({
      layout: 2,
      runId: 'demo-1',
      status: 'done',
      integrationHead: bundle.integrationHead,
    });
    expect(JSON.parse(git(repo, 'show', `${last.head}:items/2/hello.json`))).toEqual(hello);
    expect(git(repo, 'show', `${last.head}:entries.jsonl`)).toBe(
      bundle.entries
        .slice(3)
        .map((e) => `${canonicalJson(e)}\n`)
        .join(''),
    );
    expect((await readRunAt(store, 'demo-1', last.head)).state).toEqual(state);
  });
});

describe('docs/audit.md §12, an emission (v4)', () => {
  it('gives the emitted item digest and the emit entry hash the code computes', () => {
    // `name value` lines, the value running to the end of the line (it may hold spaces).
    const e = new Map(
      block('emit')
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as const),
    );
    const item = e.get('item')!;
    expect(canonicalJson(JSON.parse(item))).toBe(item);
    expect(sha256(item)).toBe(e.get('digest'));
    expect(emittedItemDigest(JSON.parse(item))).toBe(e.get('digest'));
    const body = JSON.parse(e.get('body')!);
    expect(canonicalJson(body)).toBe(e.get('body'));
    expect(body.items).toEqual([{ id: 'shard-b', digest: e.get('digest') }]);
    expect(sha256(e.get('body')! + body.prevHash)).toBe(e.get('hash'));
    expect(entryHash(body)).toBe(e.get('hash'));
  });
});

describe('docs/audit.md §12, a child attempt (v5)', () => {
  it('gives the input and output digests and the call entry hash the code computes', async () => {
    const e = new Map(
      block('call')
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as const),
    );
    expect(canonicalJson(JSON.parse(e.get('input')!))).toBe(e.get('input'));
    expect(`sha256:${sha256(e.get('input')!)}`).toBe(e.get('inputDigest'));
    expect(`sha256:${sha256(e.get('answer')!)}`).toBe(e.get('outputDigest'));
    const body = JSON.parse(e.get('body')!);
    expect(canonicalJson(body)).toBe(e.get('body'));
    expect(body).toMatchObject({ input: e.get('inputDigest'), output: e.get('outputDigest') });
    expect(sha256(e.get('body')! + body.prevHash)).toBe(e.get('hash'));
    expect(entryHash(body)).toBe(e.get('hash'));
  });
});

describe('docs/audit.md §12, run parameters (v5)', () => {
  it("gives the digest of the parameters' canonical JSON the code computes", () => {
    const e = new Map(
      block('params')
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as const),
    );
    const values = e.get('values')!;
    expect(canonicalJson(JSON.parse(values))).toBe(values);
    expect(sha256(values)).toBe(e.get('digest'));
    expect(paramsDigest(JSON.parse(values))).toBe(e.get('digest'));
  });
});
