import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditStatement, type AuditBundle, type AuditReport, type FailureCode } from '../../src/audit/bundle.js';
import { buildAuditBundle } from '../../src/audit/build-bundle.js';
import { canonicalJson } from '../../src/log/canonical-json.js';
import { type AuditEntry } from '../../src/log/entry.js';
import { generateSigningKey } from '../../src/audit/keys.js';
import { signKeyless, signWithKey } from '../../src/audit/signers.js';
import { statementPayload } from '../../src/audit/statement.js';
import { verifyBundle } from '../../src/audit/verify/pipeline.js';
import { type VerifyOptions } from '../../src/audit/verify/options.js';
import { readRunChain } from '../../src/runs/run-chain.js';
import { agoraIdentity } from '../../src/git/identity.js';
import type { Oid } from '../../src/git/types.js';
import { applyTreeChanges, type PathChange } from '../../src/git/tree-edit.js';
import { fanoutDepth, itemPath, itemText } from '../../src/runs/run-layout.js';
import { entriesOf, readRunAt } from '../../src/runs/state-store.js';
import { cleanupTempDirs } from '../support/repo.js';
import { clone, copyRun, finishedRun, rechain, type FinishedRun } from './bundle-fixture.js';
import { signBytes } from './sign-bytes.js';
import { startSigstoreMock, type SigstoreMock } from './sigstore-mock.js';

/**
 * The tamper campaign: every mutation of a finished run — of its bundle, its repository or its signature — must
 * make verification fail with the code that names what broke, while the untouched run verifies.
 */

const IDENTITY = 'https://github.com/acme/widgets/.github/workflows/agora.yml@refs/heads/main';
const ISSUER = 'https://token.actions.githubusercontent.com';

let run: FinishedRun;
let good: AuditBundle;
let mock: SigstoreMock;
const tally = { tried: 0, detected: 0, missed: [] as string[] };

beforeAll(async () => {
  run = await finishedRun();
  good = await buildAuditBundle(run.store, run.refs, run.runId, { anchor: true, now: Date.now() });
  mock = await startSigstoreMock();
});

afterAll(async () => {
  await mock?.stop();
  cleanupTempDirs();
  console.log(`tamper campaign: ${tally.detected} of ${tally.tried} mutations detected${tally.missed.length ? `; missed: ${tally.missed.join('; ')}` : ''}`);
});

/** Runs one mutation: it counts as detected when the report is not intact and names `code`. */
async function expectDetected(name: string, code: FailureCode, report: AuditReport | Promise<AuditReport>): Promise<void> {
  const r = await report;
  tally.tried += 1;
  const hit = !r.intact && r.failures.some((f) => f.code === code);
  if (hit) tally.detected += 1;
  else tally.missed.push(`${name} (expected ${code}, got ${r.failures.map((f) => f.code).join(',') || 'intact'})`);
  expect(hit, `${name}: expected ${code}, got ${JSON.stringify(r.failures.slice(0, 3))}`).toBe(true);
}

const withRepo = (r: FinishedRun = run): VerifyOptions => ({ store: r.store, refs: r.refs });

/** A value that differs from `v` by one byte (one character, one unit, one element). */
function flip(v: unknown): unknown {
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'string') {
    if (v.length === 0) return 'x';
    const i = Math.floor(v.length / 2);
    const c = v[i] as string;
    const d = /[0-9a-f]/.test(c) ? ((parseInt(c, 16) + 1) % 16).toString(16) : String.fromCharCode(c.charCodeAt(0) ^ 1);
    return v.slice(0, i) + d + v.slice(i + 1);
  }
  if (Array.isArray(v)) return v.length > 0 ? [flip(v[0]), ...v.slice(1)] : ['x'];
  return 'x';
}

describe('the untouched run', () => {
  it('verifies, alone and against its repository, and is anchored', async () => {
    expect(good.report).toEqual({ intact: true, claim: 'tamper-detecting', guarantee: 'same-repository', terminal: true, failures: [] });
    expect(await verifyBundle(good, withRepo())).toEqual(good.report);
    // Without the repository, nothing external vouches for it: intact, but no claim.
    expect(await verifyBundle(good)).toMatchObject({ intact: true, claim: 'none', guarantee: 'none', failures: [] });
    expect(good.entries.length).toBeGreaterThan(10);
  });
});

describe('mutations of the bundle', () => {
  it('a flipped byte in any field of any entry breaks the chain', async () => {
    for (let i = 0; i < good.entries.length; i++) {
      const fields = Object.keys(good.entries[i] as object);
      expect(fields.length).toBeGreaterThanOrEqual(8);
      for (const field of fields) {
        const b = clone(good);
        const e = b.entries[i] as unknown as Record<string, unknown>;
        e[field] = flip(e[field]);
        await expectDetected(`flip entry ${i}.${field}`, 'chain', verifyBundle(b));
      }
    }
  });

  it('dropped, reordered, duplicated and edited entries break the chain', async () => {
    const n = good.entries.length;
    for (let i = 0; i < n; i++) {
      const dropped = clone(good);
      dropped.entries.splice(i, 1);
      // Dropping the last entry leaves a valid prefix of the chain: the root (over all entries) catches it.
      await expectDetected(`drop entry ${i}`, i === n - 1 ? 'root-mismatch' : 'chain', verifyBundle(dropped));
      const duplicated = clone(good);
      duplicated.entries.splice(i, 0, clone(good.entries[i] as AuditEntry));
      await expectDetected(`duplicate entry ${i}`, 'chain', verifyBundle(duplicated));
      if (i + 1 < n) {
        const swapped = clone(good);
        [swapped.entries[i], swapped.entries[i + 1]] = [swapped.entries[i + 1] as AuditEntry, swapped.entries[i] as AuditEntry];
        await expectDetected(`swap entries ${i},${i + 1}`, 'chain', verifyBundle(swapped));
      }
      // A forger who edits an entry and re-hashes the whole log still differs from the run ref's chain.
      const edited = clone(good);
      (edited.entries[i] as AuditEntry).at += 1;
      rechain(edited);
      await expectDetected(`edit+rehash entry ${i}`, 'chain', verifyBundle(edited, withRepo()));
      await expectDetected(`edit+rehash entry ${i} vs anchor`, 'anchor-mismatch', verifyBundle(edited, withRepo()));
    }
  });

  it('a wrong root, plan digest, summary or anchor record is named', async () => {
    const root = clone(good);
    root.root = flip(root.root) as string;
    await expectDetected('root', 'root-mismatch', verifyBundle(root));
    const plan = clone(good);
    plan.planDigest = flip(plan.planDigest) as string;
    await expectDetected('plan digest', 'plan-digest', verifyBundle(plan, withRepo()));
    const status = clone(good);
    status.items[1]!.status = 'failed';
    await expectDetected('item status', 'state', verifyBundle(status));
    const attempts = clone(good);
    attempts.items[0]!.attempts = 2;
    await expectDetected('item attempts', 'attempts', verifyBundle(attempts));
    const head = clone(good);
    head.integrationHead = good.base;
    await expectDetected('integration head', 'integration', verifyBundle(head, withRepo()));
    const anchor = clone(good);
    anchor.anchor = { kind: 'git-ref', ref: anchor.anchor!.ref, commit: good.base };
    await expectDetected('anchor record', 'anchor-mismatch', verifyBundle(anchor, withRepo()));
  });

  it("a consistently re-hashed log that breaks the run's rules is caught by the replay alone", async () => {
    const idx = (pred: (e: AuditEntry) => boolean) => good.entries.findIndex(pred);
    // verify started while edit-alpha was still running: its completion moved to the end.
    const order = clone(good);
    const [alphaDone] = order.entries.splice(
      idx((e) => e.kind === 'item' && e.itemId === 'edit-alpha' && e.to === 'done'),
      1,
    );
    order.entries.splice(order.entries.length - 1, 0, alphaDone as AuditEntry);
    await expectDetected('dependency order', 'order', verifyBundle(rechain(order)));
    // edit-beta held edit-alpha's file while edit-alpha was running.
    const lock = clone(good);
    const betaStart = lock.entries[idx((e) => e.kind === 'item' && e.itemId === 'edit-beta' && e.to === 'running')] as AuditEntry & { locks?: string[] };
    betaStart.locks = ['fixture/alpha.ts'];
    lock.items.find((i) => i.id === 'edit-beta')!.locks = ['fixture/alpha.ts'];
    await expectDetected('overlapping locks', 'lock', verifyBundle(rechain(lock)));
    // verify "succeeded" with an attempt that never started.
    const attempts = clone(good);
    (attempts.entries[idx((e) => e.kind === 'item' && e.itemId === 'verify' && e.to === 'done')] as AuditEntry & { attempt: number }).attempt = 2;
    await expectDetected('attempt numbers', 'attempts', verifyBundle(rechain(attempts)));
    // an item started twice in a row.
    const twice = clone(good);
    const start = idx((e) => e.kind === 'item' && e.itemId === 'edit-shared' && e.to === 'running');
    twice.entries.splice(start + 1, 0, clone(twice.entries[start] as AuditEntry));
    await expectDetected('started twice', 'state', verifyBundle(rechain(twice)));
    // Each of those, against the repository, is also a chain that is not the run's.
    await expectDetected('forged log vs repository', 'chain', verifyBundle(rechain(order), withRepo()));
  });
});

// --- the repository --------------------------------------------------------------------------------

const decoder = new TextDecoder();

/**
 * Rewrites the run's whole state chain (what `git push --force` of a forged history would leave): each commit
 * again, with its entries edited and re-hashed and its items' state edited; the run ref is force-moved to it.
 */
async function forgeChain(
  r: FinishedRun,
  edit: { entries?: (entries: AuditEntry[]) => void; stateText?: (text: string) => string; lastOnly?: boolean },
): Promise<Oid> {
  const head = (await r.store.resolveRef(r.refs.run(r.runId)))!;
  const chain = await readRunChain(r.store, head);
  const forged = clone({ entries: chain.entries } as AuditBundle);
  edit.entries?.(forged.entries);
  rechain(forged);
  let parent: Oid | null = null;
  let seq = 0;
  for (const [k, commit] of chain.commits.entries()) {
    const data = await r.store.readCommit(commit);
    const count = (await entriesOf(r.store, commit)).length;
    const mine = forged.entries.slice(seq, seq + count);
    seq += count;
    const changes: PathChange[] = [
      { path: 'entries.jsonl', entry: { mode: '100644', oid: await r.store.writeBlob(mine.map((x) => `${canonicalJson(x)}\n`).join('')) } },
    ];
    if (edit.stateText && (!edit.lastOnly || k === chain.commits.length - 1)) {
      // Every item's blob (layout 2: items/…/<id>.json) edited the same way.
      const stored = await readRunAt(r.store, r.runId, commit);
      const depth = fanoutDepth(stored.plan.items.length);
      for (const item of Object.values(stored.state.items)) {
        changes.push({ path: itemPath(item.id, depth), entry: { mode: '100644', oid: await r.store.writeBlob(edit.stateText(itemText(item))) } });
      }
    }
    const tree = await applyTreeChanges(r.store, data.tree, changes);
    parent = await r.store.writeCommit({ ...data, tree, parents: parent ? [parent] : [] });
  }
  expect(await r.store.casRef(r.refs.run(r.runId), parent!, head)).toBe(true);
  return parent!;
}

async function move(r: FinishedRun, ref: string, to: Oid): Promise<void> {
  const at = await r.store.resolveRef(ref);
  expect(await r.store.casRef(ref, to, at)).toBe(true);
}

describe('mutations of the repository', () => {
  it('a run ref force-moved to a forged history is detected', async () => {
    // Only the items' state in the last commit edited: the entries match, the anchored state commit does not.
    const edited = await copyRun(run);
    await forgeChain(edited, { stateText: (t) => t.replace('"attempts":1', '"attempts":2'), lastOnly: true });
    await expectDetected('forged state commit', 'anchor-mismatch', verifyBundle(good, withRepo(edited)));
    await expectDetected('forged state commit (state)', 'state', verifyBundle(good, withRepo(edited)));
    // An entry edited and the chain rewritten: the bundle's entries are no longer the run ref's.
    const rewritten = await copyRun(run);
    await forgeChain(rewritten, { entries: (es) => void ((es[3] as AuditEntry).at -= 1000) });
    await expectDetected('rewritten history', 'chain', verifyBundle(good, withRepo(rewritten)));
    // And the forger's own bundle of that history does not match the anchor.
    const reaudit = await buildAuditBundle(rewritten.store, rewritten.refs, run.runId, { anchor: true, now: Date.now() });
    await expectDetected('re-audited forged history', 'anchor-mismatch', reaudit.report);
    // A forged plan in the first commit.
    const plan = await copyRun(run);
    const head = (await plan.store.resolveRef(plan.refs.run(run.runId)))!;
    const chain = await readRunChain(plan.store, head);
    let parent: Oid | null = null;
    for (const commit of chain.commits) {
      const data = await plan.store.readCommit(commit);
      const tree = [];
      for (const e of await plan.store.readTree(data.tree)) {
        if (e.path !== 'plan.json') tree.push(e);
        else tree.push({ ...e, oid: await plan.store.writeBlob(decoder.decode(await plan.store.readBlob(e.oid)).replace('"alpha.ts"', '"gamma.ts"')) });
      }
      parent = await plan.store.writeCommit({ ...data, tree: await plan.store.writeTree(tree), parents: parent ? [parent] : [] });
    }
    await move(plan, plan.refs.run(run.runId), parent!);
    await expectDetected('forged plan', 'plan-digest', verifyBundle(good, withRepo(plan)));
    // A plan that says one thing to a reader and another to JSON.parse: the same digest, but refused.
    const twice = await copyRun(run);
    const twiceHead = (await twice.store.resolveRef(twice.refs.run(run.runId)))!;
    parent = null;
    for (const commit of (await readRunChain(twice.store, twiceHead)).commits) {
      const data = await twice.store.readCommit(commit);
      const tree = [];
      for (const e of await twice.store.readTree(data.tree)) {
        if (e.path !== 'plan.json') tree.push(e);
        else tree.push({ ...e, oid: await twice.store.writeBlob(decoder.decode(await twice.store.readBlob(e.oid)).replace('{', '{"id": "reviewed-plan",')) });
      }
      parent = await twice.store.writeCommit({ ...data, tree: await twice.store.writeTree(tree), parents: parent ? [parent] : [] });
    }
    await move(twice, twice.refs.run(run.runId), parent!);
    const twiceReport = await verifyBundle(good, withRepo(twice));
    await expectDetected('plan with a key given twice', 'plan-digest', twiceReport);
    expect(twiceReport.failures.find((f) => f.code === 'plan-digest')?.message).toMatch(/repeats the key "id" at \$\.id/);
  });

  it('patch refs and patch commits that are not what the log recorded are detected', async () => {
    const moved = await copyRun(run);
    await move(moved, moved.refs.patch(run.runId, 'edit-alpha'), (await moved.store.resolveRef(moved.refs.patch(run.runId, 'edit-beta')))!);
    await expectDetected('patch ref moved', 'patch-missing', verifyBundle(good, withRepo(moved)));

    // A patch rewritten with another tree; its ref and the resultRef in a forged state history follow it.
    const rewritten = await copyRun(run);
    const s = rewritten.store;
    const oldPatch = (await s.resolveRef(rewritten.refs.patch(run.runId, 'edit-alpha')))!;
    const data = await s.readCommit(oldPatch);
    const fixture = (await s.readTree(data.tree)).find((e) => e.path === 'fixture')!;
    const files = await s.readTree(fixture.oid);
    const alpha = files.find((e) => e.path === 'alpha.ts')!;
    const evil = await s.writeBlob('export const alpha = "rewritten";\n');
    const fixtureTree = await s.writeTree(files.map((e) => (e === alpha ? { ...e, oid: evil } : e)));
    const tree = await s.writeTree((await s.readTree(data.tree)).map((e) => (e.path === 'fixture' ? { ...e, oid: fixtureTree } : e)));
    const newPatch = await s.writeCommit({ ...data, tree, author: agoraIdentity(1), committer: agoraIdentity(1) });
    await move(rewritten, rewritten.refs.patch(run.runId, 'edit-alpha'), newPatch);
    await forgeChain(rewritten, {
      entries: (es) => es.forEach((e) => e.kind === 'item' && e.resultRef === `git:${oldPatch}` && (e.resultRef = `git:${newPatch}`)),
      stateText: (t) => t.replaceAll(oldPatch, newPatch),
    });
    const forged = await buildAuditBundle(rewritten.store, rewritten.refs, run.runId, { anchor: true, now: Date.now() });
    await expectDetected('rewritten patch (integration)', 'integration', forged.report);
    await expectDetected('rewritten patch (anchor)', 'anchor-mismatch', forged.report);
    await expectDetected('rewritten patch vs the real bundle', 'patch-missing', verifyBundle(good, withRepo(rewritten)));

    // A patch that writes outside its locks (the forger also rebuilt the integration to match).
    const scope = clone(good);
    scope.items.find((i) => i.id === 'edit-alpha')!.locks = ['fixture/beta.ts'];
    const alphaStart = scope.entries.find((e) => e.kind === 'item' && e.itemId === 'edit-alpha' && e.to === 'running') as AuditEntry & { locks?: string[] };
    alphaStart.locks = ['fixture/beta.ts'];
    await expectDetected('patch outside its scope', 'scope', verifyBundle(rechain(scope), withRepo()));
  });

  it('moved integration and anchor refs are detected', async () => {
    const integration = await copyRun(run);
    await move(integration, integration.refs.integration(run.runId), good.base);
    await expectDetected('integration ref moved', 'integration', verifyBundle(good, withRepo(integration)));

    const anchor = await copyRun(run);
    await move(anchor, anchor.refs.anchor(run.runId), good.integrationHead);
    await expectDetected('anchor ref moved', 'anchor-mismatch', verifyBundle(good, withRepo(anchor)));
    const gone = await copyRun(run);
    expect(await gone.store.deleteRef(gone.refs.anchor(run.runId), good.anchor!.commit)).toBe(true);
    await expectDetected('anchor ref deleted', 'anchor-missing', verifyBundle(good, withRepo(gone)));
  });
});

// --- signatures ---------------------------------------------------------------------------------------

describe('mutations of the signature', () => {
  it('key signatures: the right key verifies; another root, another key or an edited bundle do not', async () => {
    const key = generateSigningKey();
    const signed = await signWithKey(auditStatement(good), { privateKeyPem: key.privateKeyPem });
    const bundle = { ...clone(good), signature: signed.record };
    const ok = await verifyBundle(bundle, { ...withRepo(), sigstoreBundle: signed.bundle, publicKeyPem: key.publicKeyPem });
    expect(ok).toMatchObject({ intact: true, claim: 'tamper-detecting', guarantee: 'same-repository' });
    // Without the repository the signature alone backs the claim.
    expect(await verifyBundle(bundle, { sigstoreBundle: signed.bundle, publicKeyPem: key.publicKeyPem })).toMatchObject({
      intact: true,
      claim: 'tamper-detecting',
      guarantee: 'signed',
    });

    const other = await signWithKey(auditStatement({ ...clone(good), root: flip(good.root) as string }), { privateKeyPem: key.privateKeyPem });
    await expectDetected(
      'sigstore bundle over another root',
      'signature',
      verifyBundle(bundle, { ...withRepo(), sigstoreBundle: other.bundle, publicKeyPem: key.publicKeyPem }),
    );
    const stranger = generateSigningKey();
    const untrusted = await signWithKey(auditStatement(good), { privateKeyPem: stranger.privateKeyPem });
    await expectDetected(
      'untrusted key',
      'signature',
      verifyBundle(bundle, { ...withRepo(), sigstoreBundle: untrusted.bundle, publicKeyPem: key.publicKeyPem }),
    );
    const edited = clone(bundle);
    edited.items[0]!.reason = 'nothing to see';
    await expectDetected('bundle edited after signing', 'signature', verifyBundle(edited, { sigstoreBundle: signed.bundle, publicKeyPem: key.publicKeyPem }));
    await expectDetected('signature recorded, none given', 'signature', verifyBundle(bundle, withRepo()));
    // Genuinely signed by the trusted key, but not the canonical bytes of this bundle's statement.
    const canonical = statementPayload(auditStatement(good)).toString('utf8');
    for (const [what, payload] of [
      ['signed payload indented', JSON.stringify(auditStatement(good), null, 2)],
      ['signed payload with an extra predicate field', canonical.replace('"predicate":{', '"predicate":{"note":"x",')],
      ['signed payload with merkleRoot twice', canonical.replace('"merkleRoot":', `"merkleRoot":"${flip(good.root) as string}","merkleRoot":`)],
    ] as const) {
      const sigstoreBundle = await signBytes(payload, key.privateKeyPem);
      await expectDetected(what, 'signature', verifyBundle(bundle, { ...withRepo(), sigstoreBundle, publicKeyPem: key.publicKeyPem }));
    }
  });

  it('a pinned key or identity makes the signature mandatory: stripping it is detected', async () => {
    const key = generateSigningKey();
    // The record is outside the signed digest: a forger sets it to null and drops the Sigstore bundle.
    const stripped = { ...clone(good), signature: null };
    await expectDetected('signature stripped, key pinned', 'signature', verifyBundle(stripped, { publicKeyPem: key.publicKeyPem }));
    await expectDetected('signature stripped, key pinned, with repo', 'signature', verifyBundle(stripped, { ...withRepo(), publicKeyPem: key.publicKeyPem }));
    // ... even when the caller does not ask for the recorded signature to be checked.
    await expectDetected(
      'signature stripped, key pinned, requireSignature false',
      'signature',
      verifyBundle(stripped, { publicKeyPem: key.publicKeyPem, requireSignature: false }),
    );
    const forged = rechain({ ...clone(good), signature: null });
    (forged.entries[3] as AuditEntry).at += 1;
    await expectDetected('forged and stripped, key pinned', 'signature', verifyBundle(rechain(forged), { publicKeyPem: key.publicKeyPem }));
    const keyless = { certificateIdentity: IDENTITY, certificateIssuer: ISSUER, trustedRoot: mock.trustedRoot };
    await expectDetected('signature stripped, identity pinned', 'signature', verifyBundle(stripped, keyless));
    const r = await verifyBundle(stripped, { publicKeyPem: key.publicKeyPem });
    expect(r.failures.find((f) => f.code === 'signature')?.message).toMatch(/a signature is required.*public key.*no Sigstore bundle was given.*--sigstore/);
    expect(r.claim).toBe('none');
  });

  it('pins: a genuinely signed bundle of another run or plan commit does not verify where this one is expected', async () => {
    const key = generateSigningKey();
    const signed = await signWithKey(auditStatement(good), { privateKeyPem: key.privateKeyPem });
    const trust = { sigstoreBundle: signed.bundle, publicKeyPem: key.publicKeyPem };
    const bundle = { ...clone(good), signature: signed.record };
    expect(await verifyBundle(bundle, { ...trust, expect: { runId: good.runId, planCommit: good.base } })).toMatchObject({ intact: true, failures: [] });
    await expectDetected('pinned to another run', 'pin', verifyBundle(bundle, { ...trust, expect: { runId: 'nightly-9-1' } }));
    await expectDetected('pinned to another plan commit', 'pin', verifyBundle(bundle, { ...withRepo(), ...trust, expect: { planCommit: 'f'.repeat(40) } }));
    // The forger who edits the run id to match breaks the signature (and the chain: each entry names its run).
    const renamed = clone(bundle);
    renamed.runId = 'nightly-9-1';
    await expectDetected('run id edited to match the pin', 'signature', verifyBundle(renamed, { ...trust, expect: { runId: 'nightly-9-1' } }));
  });

  it('repository pin: a bundle made in one GitHub repository does not verify where another is expected, nor after an edit', async () => {
    const key = generateSigningKey();
    const made = { ...clone(good), repository: { fullName: 'acme/widgets', id: 4711 } };
    const signed = await signWithKey(auditStatement(made), { privateKeyPem: key.privateKeyPem });
    // The repository is in the signed statement itself, not only inside the bundle digest.
    expect(JSON.parse(Buffer.from(signed.bundle.dsseEnvelope!.payload, 'base64').toString('utf8')).predicate.repository).toEqual({
      fullName: 'acme/widgets',
      id: 4711,
    });
    const trust = { sigstoreBundle: signed.bundle, publicKeyPem: key.publicKeyPem };
    const bundle = { ...made, signature: signed.record };
    expect(await verifyBundle(bundle, { ...trust, expect: { repository: 'ACME/widgets' } })).toMatchObject({ intact: true, failures: [] });
    await expectDetected('pinned to another repository', 'pin', verifyBundle(bundle, { ...trust, expect: { repository: 'acme/gadgets' } }));
    const moved = { ...clone(bundle), repository: { fullName: 'acme/gadgets', id: 4711 } };
    await expectDetected('repository edited to match the pin', 'signature', verifyBundle(moved, { ...trust, expect: { repository: 'acme/gadgets' } }));
    const renumbered = { ...clone(bundle), repository: { fullName: 'acme/widgets', id: 4712 } };
    await expectDetected('repository id edited', 'signature', verifyBundle(renumbered, trust));
    await expect(verifyBundle(bundle, { expect: { repository: 'acme/widgets' } })).rejects.toMatchObject({ code: 'verify-options' });
  });

  it('keyless signatures: the exact identity and issuer verify (tamper-evident); any other does not', async () => {
    const signed = await signKeyless(auditStatement(good), {
      identityToken: mock.identityToken({ sub: IDENTITY, iss: ISSUER }),
      fulcioUrl: mock.fulcioUrl,
      rekorUrl: mock.rekorUrl,
      tsaUrl: mock.tsaUrl,
      rekorEntryType: 'intoto',
    });
    const bundle = { ...clone(good), signature: signed.record };
    const trust = { sigstoreBundle: signed.bundle, trustedRoot: mock.trustedRoot };
    const ok = await verifyBundle(bundle, { ...withRepo(), ...trust, certificateIdentity: IDENTITY, certificateIssuer: ISSUER });
    expect(ok).toEqual({ intact: true, claim: 'tamper-evident', guarantee: 'external-immutable', terminal: true, failures: [] });

    await expectDetected(
      'keyless, wrong identity',
      'signature',
      verifyBundle(bundle, { ...trust, certificateIdentity: `${IDENTITY}x`, certificateIssuer: ISSUER }),
    );
    await expectDetected(
      'keyless, identity prefix',
      'signature',
      verifyBundle(bundle, { ...trust, certificateIdentity: 'https://github.com/acme/', certificateIssuer: ISSUER }),
    );
    await expectDetected(
      'keyless, wrong issuer',
      'signature',
      verifyBundle(bundle, { ...trust, certificateIdentity: IDENTITY, certificateIssuer: 'https://accounts.example.com' }),
    );
    const otherRoot = await signKeyless(auditStatement({ ...clone(good), root: flip(good.root) as string }), {
      identityToken: mock.identityToken({ sub: IDENTITY, iss: ISSUER }),
      fulcioUrl: mock.fulcioUrl,
      rekorUrl: mock.rekorUrl,
      tsaUrl: mock.tsaUrl,
      rekorEntryType: 'intoto',
    });
    await expectDetected(
      'keyless over another root',
      'signature',
      verifyBundle(bundle, { ...trust, sigstoreBundle: otherRoot.bundle, certificateIdentity: IDENTITY, certificateIssuer: ISSUER }),
    );
  });
});

describe('the campaign', () => {
  it('detected every mutation it tried', () => {
    expect(tally.tried).toBeGreaterThan(150);
    expect(tally.missed).toEqual([]);
    expect(tally.detected).toBe(tally.tried);
  });
});
