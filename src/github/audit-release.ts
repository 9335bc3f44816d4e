import { createHash } from 'node:crypto';
import { auditStatement } from '../audit/bundle.js';
import { buildAuditBundle } from '../audit/build-bundle.js';
import { parseAuditBundle } from '../audit/verify/parse.js';
import { loadPrivateKey } from '../audit/keys.js';
import { signKeyless, signWithKey, type SignedAudit } from '../audit/signers.js';
import type { InTotoStatement } from '../audit/statement.js';
import { verifyBundle } from '../audit/verify/pipeline.js';
import { type VerifyOptions } from '../audit/verify/options.js';
import type { GitStore, Oid } from '../git/types.js';
import type { RunRefs } from '../runs/refs.js';
import { readRun, type StoredRun } from '../runs/state-store.js';
import type { Octokit } from './octokit.js';
import { fitCheckText } from './check-text.js';
import { plainText } from './untrusted-markdown.js';
import { trailers } from './plan-commit.js';
import { checkBranch } from '../runs/branch-check.js';
import { GATE_CHECK_NAME, gateExternalId } from './check-names.js';
import { peopleNote, problemList, regateSummary } from './gate-text.js';

/**
 * The end of a run on GitHub: the audit bundle (anchored in refs/agora/anchors/<run>, pushed; signed with
 * the app's key when it has one), attached to a prerelease `agora-run-<run>`, and the merge gate
 * `agora / audit` on the branch head: success only if the run succeeded, the bundle as uploaded verifies
 * against the repository (and its signature, when signed), and every commit after the plan commit is one
 * of the run's audited integration commits.
 */

/** The red gate's button: run the plan again on the gate's commit (label, identifier ≤ 20 chars; description ≤ 40). */
export const RERUN_ACTION = { label: 'Re-run plan', identifier: 'agora-rerun', description: 'Run the plan again on this commit' } as const;

export interface AuditArgs {
  octokit: Octokit;
  owner: string;
  repo: string;
  /**
   * The repository's GitHub id. With it the bundle (format v2) and its signed statement record the
   * repository by full name and id, so `agora verify --repository OWNER/NAME` can pin it; without it
   * (never, for events from GitHub) the bundle records no repository.
   */
  repositoryId?: number;
  htmlUrl: string;
  store: GitStore;
  refs: RunRefs;
  run: StoredRun;
  /** The branch head the gate is about: the pushed integration head, or the plan commit. */
  gateSha: Oid;
  /** GitHub's reason when it refused the push of the patch commits onto the branch (the gate fails, saying it). */
  landingRefused?: string;
  /** How the audit statement is signed (src/github/signer-env.ts builds it from the environment); unsigned without. */
  signer?: AppSigner;
  clock: () => number;
}

/**
 * The app's configured signer: a local ECDSA P-256 key (offline, self-hosted), or keyless (a Fulcio
 * certificate for an OIDC identity, e.g. GitHub Actions', logged in Rekor).
 */
export type AppSigner =
  | { kind: 'key'; privateKeyPem: string }
  | {
      kind: 'keyless';
      fulcioUrl: string;
      rekorUrl: string;
      tsaUrl?: string;
      /** A fresh OIDC token per signature (Actions tokens expire within minutes). */
      identityToken: () => Promise<string>;
      /** How Rekor records the DSSE envelope (default `dsse`; `intoto` for a log that stores entries verbatim). */
      rekorEntryType?: 'dsse' | 'intoto';
      /** A parsed trusted_root.json for the gate's verification (never fetched); unchecked without. */
      trustedRoot?: unknown;
      /** The exact certificate SAN and OIDC issuer the gate requires; unchecked without both. */
      certificateIdentity?: string;
      certificateIssuer?: string;
    };

/** The signature and what the gate can check it with, or why it cannot. */
interface AppSignature {
  signed: SignedAudit;
  /** Trust for verifyBundle; null when the signature cannot be checked here (`unchecked` says why). */
  trust: Pick<VerifyOptions, 'publicKeyPem' | 'certificateIdentity' | 'certificateIssuer' | 'trustedRoot'> | null;
  unchecked?: string;
}

async function signAudit(signer: AppSigner, statement: InTotoStatement): Promise<AppSignature> {
  if (signer.kind === 'key') {
    const key = await loadPrivateKey(signer.privateKeyPem, { sourceName: 'AGORA_SIGNING_KEY' });
    return { signed: await signWithKey(statement, { privateKeyPem: key.privateKeyPem }), trust: { publicKeyPem: key.publicKeyPem } };
  }
  const signed = await signKeyless(statement, {
    identityToken: await signer.identityToken(),
    fulcioUrl: signer.fulcioUrl,
    rekorUrl: signer.rekorUrl,
    ...(signer.tsaUrl ? { tsaUrl: signer.tsaUrl } : {}),
    ...(signer.rekorEntryType ? { rekorEntryType: signer.rekorEntryType } : {}),
  });
  const missing = [
    signer.trustedRoot === undefined ? 'trusted root (AGORA_TRUSTED_ROOT)' : '',
    signer.certificateIdentity ? '' : 'expected identity (AGORA_CERT_IDENTITY)',
    signer.certificateIssuer ? '' : 'expected issuer (AGORA_CERT_ISSUER)',
  ].filter(Boolean);
  if (missing.length > 0) return { signed, trust: null, unchecked: `the app has no ${missing.join(', ')}` };
  return {
    signed,
    trust: { trustedRoot: signer.trustedRoot, certificateIdentity: signer.certificateIdentity as string, certificateIssuer: signer.certificateIssuer as string },
  };
}

/** The gate summary's line about the signature. */
function signatureLine(signer: AppSigner | undefined, sig: AppSignature | undefined, signError: string | undefined): string {
  if (!signer) return 'Not signed: the app has no signer (AGORA_SIGNING_KEY, or AGORA_SIGNER=keyless), so the claim rests on the anchor in this repository.';
  if (signError !== undefined || !sig) return `Not signed: the app's ${signer.kind === 'key' ? 'key' : 'keyless'} signer failed (${plainText(signError ?? 'unknown error')}).`;
  const rec = sig.signed.record;
  if (rec.kind === 'key') return `Signed with the app's key (key id \`${rec.keyId ?? '?'}\`).`;
  const who = `\`${rec.identity ?? '?'}\` (issuer \`${rec.issuer ?? '?'}\`), Rekor entry ${rec.rekorLogIndex ?? '?'} at ${rec.rekorUrl ?? '?'}`;
  return sig.trust
    ? `Signed keyless as ${who}; the signature was checked against the app's trusted root and expected identity.`
    : `Signed keyless as ${who}; the signature was **not checked**: ${sig.unchecked}.`;
}

export interface AuditOutcome {
  conclusion: 'success' | 'failure';
  problems: string[];
  /** One line for the run check. */
  note: string;
  releaseUrl: string | null;
  assets: string[];
}

export async function finishAudit(a: AuditArgs): Promise<AuditOutcome> {
  let bundle: Awaited<ReturnType<typeof buildAuditBundle>>;
  try {
    const repository = a.repositoryId === undefined ? undefined : { fullName: `${a.owner}/${a.repo}`, id: a.repositoryId };
    bundle = await buildAuditBundle(a.store, a.refs, a.run.runId, { anchor: true, now: a.clock(), ...(repository ? { repository } : {}) });
  } catch (e) {
    // GitHub refusing (the anchor's push) is worth another try; anything else will fail the same way again.
    if (typeof (e as { status?: unknown }).status === 'number') throw e;
    return auditNotProduced(a, e);
  }
  return publishAudit(a, bundle);
}

/**
 * The audit of a run cannot be built (an unreadable object, a document past a limit): the gate is red and
 * names why, instead of a run left in progress with no gate.
 */
async function auditNotProduced(a: AuditArgs, e: unknown): Promise<AuditOutcome> {
  const why = (e as Error).message ?? String(e);
  const hint = (e as { hint?: string }).hint;
  const problem = `the audit bundle of run \`${a.run.runId}\` could not be produced: ${why}`;
  await postGate(a, a.gateSha, a.run.runId, 'failure', {
    title: 'Not audited: the audit could not be produced',
    summary: [`Run \`${a.run.runId}\` (${a.run.state.status}).`, '', 'Problems:', `- ${problem}`, ...(hint ? ['', `What to do: ${hint}`] : [])].join('\n'),
  });
  return { conclusion: 'failure', problems: [problem], releaseUrl: null, assets: [], note: `Audit: \`agora / audit\` is **failure** on ${a.gateSha.slice(0, 12)}: ${problem}.` };
}

async function publishAudit(a: AuditArgs, bundle: Awaited<ReturnType<typeof buildAuditBundle>>): Promise<AuditOutcome> {
  const { runId } = a.run;
  let sig: AppSignature | undefined;
  let signError: string | undefined;
  if (a.signer) {
    try {
      sig = await signAudit(a.signer, auditStatement(bundle));
      bundle.signature = sig.signed.record;
    } catch (e) {
      // The bundle is still published (anchored, unsigned); the gate fails, naming why it is not signed.
      signError = (e as Error).message;
    }
  }
  const text = `${JSON.stringify(bundle, null, 2)}\n`;
  // The gate checks the bytes that are published, not the object they came from.
  const published = parseAuditBundle(text, `${runId}.audit.json`);
  published.report = await verifyBundle(published, {
    store: a.store,
    refs: a.refs,
    ...(sig?.trust ? { sigstoreBundle: sig.signed.bundle, ...sig.trust } : {}),
    requireSignature: Boolean(sig?.trust),
    // The gate holds the bundle to this run and, where a signature binds it, this repository: what a
    // reviewer's `agora verify --run R --repository OWNER/NAME --key …` will hold it to.
    expect: { runId, ...(sig?.trust && a.repositoryId !== undefined ? { repository: `${a.owner}/${a.repo}` } : {}) },
  });
  const finalText = `${JSON.stringify({ ...bundle, report: published.report }, null, 2)}\n`;

  const files: Array<{ name: string; data: string }> = [{ name: `${runId}.audit.json`, data: finalText }];
  if (sig) files.push({ name: `${runId}.audit.sigstore.json`, data: `${JSON.stringify(sig.signed.bundle, null, 2)}\n` });
  const release = await publishRelease(a, files);

  const problems: string[] = [];
  if (signError !== undefined) problems.push(`the audit could not be signed: ${signError}`);
  if (a.run.state.status !== 'done') {
    const bad = Object.values(a.run.state.items).filter((i) => i.status !== 'done');
    problems.push(`the run is ${a.run.state.status}: ${bad.map((i) => `${i.id} ${i.status}`).join(', ')}`);
  }
  for (const f of published.report.failures) {
    if (f.code !== 'not-terminal') problems.push(`audit ${f.code}${f.item ? ` (${f.item})` : ''}: ${f.message}`);
  }
  if (a.landingRefused !== undefined) problems.push(`GitHub refused the push of the patch commits onto the branch: ${a.landingRefused}`);
  const branch = await checkBranch(a.store, a.gateSha, branchRun(a.run));
  problems.push(...branch.problems);

  const conclusion = problems.length === 0 ? 'success' : 'failure';
  const summary = [
    `Run \`${runId}\` (${a.run.state.status}). Audit bundle root \`${bundle.root}\`, ${bundle.entries.length} entries, claim **${published.report.claim}** (${published.report.guarantee}).`,
    signatureLine(a.signer, sig, signError),
    release.url ? `Release: ${release.url} — assets ${release.assets.map((n) => `\`${n}\``).join(', ')}.` : 'Release: not published.',
    '',
    problems.length === 0 ? `The bundle verifies, and ${branch.people.length ? 'every commit above the ones listed below' : 'every commit after the plan commit'} is an audited patch.` : 'Problems:',
    ...problemList(problems),
    ...peopleNote(branch.people),
  ].join('\n');
  await postGate(a, a.gateSha, runId, conclusion, {
    title: conclusion === 'success' ? 'Audited' : `Not audited: ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
    summary,
  });
  return {
    conclusion,
    problems,
    releaseUrl: release.url,
    assets: release.assets,
    note: `Audit: \`agora / audit\` is **${conclusion}** on ${a.gateSha.slice(0, 12)}${release.url ? `; bundle attached to ${release.url}` : ''}.`,
  };
}

/** Posts the merge gate `agora / audit` on `sha`, completed: success, or failure with the Re-run button. */
export async function postGate(
  g: Pick<AuditArgs, 'octokit' | 'owner' | 'repo'>,
  sha: Oid,
  runId: string,
  conclusion: 'success' | 'failure',
  output: { title: string; summary: string },
): Promise<void> {
  await g.octokit.rest.checks.create({
    owner: g.owner,
    repo: g.repo,
    name: GATE_CHECK_NAME,
    head_sha: sha,
    status: 'completed',
    conclusion,
    external_id: gateExternalId(runId),
    output: { title: output.title, summary: fitCheckText(output.summary) },
    actions: conclusion === 'success' ? [] : [RERUN_ACTION],
  });
}

function branchRun(run: StoredRun) {
  return { runId: run.runId, base: run.state.base, items: Object.values(run.state.items) };
}

/**
 * A later push onto a branch a run already patched: the gate is re-evaluated on the new head. The run is
 * found from the nearest Agora integration commit below the head; every commit above the plan commit must
 * still be one of its audited patches, so a human commit on top turns the gate red, naming the commit.
 */
export async function regate(a: { octokit: Octokit; owner: string; repo: string; store: GitStore; refs: RunRefs; head: Oid }): Promise<string | null> {
  let runId: string | undefined;
  let at: Oid | undefined = a.head;
  for (let n = 0; at && n < 500 && !runId; n += 1) {
    const c = await a.store.readCommit(at);
    runId = trailers(c.message).get('Agora-Run');
    at = c.parents[0];
  }
  if (!runId) return null;
  const run = await readRun(a.store, a.refs, runId);
  if (!run || run.state.status === 'running') return null;
  const problems = (await checkBranch(a.store, a.head, branchRun(run))).problems;
  if (run.state.status !== 'done') problems.unshift(`the run is ${run.state.status}`);
  if (problems.length === 0) return null; // nothing new above the audited head
  await a.octokit.rest.checks.create({
    owner: a.owner,
    repo: a.repo,
    name: GATE_CHECK_NAME,
    head_sha: a.head,
    status: 'completed',
    conclusion: 'failure',
    external_id: gateExternalId(runId),
    output: {
      title: `Not audited: ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
      summary: fitCheckText(regateSummary(runId, problems)),
    },
    actions: [RERUN_ACTION],
  });
  return runId;
}

/**
 * Publishes `files` as the assets of the prerelease `agora-run-<run>` (created at the gate's commit when
 * missing). An asset of the same name is kept when it already holds these bytes, else deleted and
 * uploaded again, so a retried run's release carries its last finish. Safe under replicas racing.
 */
export async function publishRelease(
  a: Pick<AuditArgs, 'octokit' | 'owner' | 'repo' | 'gateSha'> & { run: { runId: string; state: { status: string } } },
  files: Array<{ name: string; data: string }>,
): Promise<{ url: string | null; assets: string[] }> {
  const tag = `agora-run-${a.run.runId}`;
  const o = { owner: a.owner, repo: a.repo };
  let release;
  try {
    release = (
      await a.octokit.rest.repos.createRelease({
        ...o,
        tag_name: tag,
        target_commitish: a.gateSha,
        name: `Agora run ${a.run.runId}`,
        body: `Audit bundle of agora run \`${a.run.runId}\` (${a.run.state.status}). Verify with \`agora verify ${a.run.runId}.audit.json --repo .\`.`,
        prerelease: true,
        make_latest: 'false',
      })
    ).data;
  } catch (e) {
    if ((e as { status?: number }).status !== 422) throw e;
    release = (await a.octokit.rest.repos.getReleaseByTag({ ...o, tag })).data; // published by an earlier attempt
  }
  // An asset of the same name from an earlier finish (a retried run) is replaced unless its bytes are
  // already these. Two replicas may race here: every step re-reads the release after a conflict, bounded.
  for (const f of files) {
    const data = Buffer.from(f.data, 'utf8');
    for (let attempt = 0; ; attempt += 1) {
      if (attempt === RELEASE_ASSET_ATTEMPTS) {
        throw new Error(`release ${tag}: asset ${f.name} kept changing under ${RELEASE_ASSET_ATTEMPTS} attempts to replace it (another replica publishing the same run?); the run's audit bundle is anchored in refs/agora/anchors/${a.run.runId}, finish the run again to republish`);
      }
      const old = release.assets.find((x) => x.name === f.name);
      if (old) {
        const same = await assetHolds(a, old, data);
        if (same === true) break;
        if (same === 'gone') {
          release = (await a.octokit.rest.repos.getRelease({ ...o, release_id: release.id })).data;
          continue;
        }
        try {
          await a.octokit.rest.repos.deleteReleaseAsset({ ...o, asset_id: old.id });
        } catch (e) {
          if ((e as { status?: number }).status !== 404) throw e; // deleted by someone else: upload ours
        }
      }
      try {
        await a.octokit.rest.repos.uploadReleaseAsset({
          ...o,
          release_id: release.id,
          url: release.upload_url,
          name: f.name,
          data: f.data,
          headers: { 'content-type': 'application/json', 'content-length': data.length },
        });
        break;
      } catch (e) {
        if ((e as { status?: number }).status !== 422) throw e;
        // Someone uploaded this name between our read and our upload: look again.
        release = (await a.octokit.rest.repos.getRelease({ ...o, release_id: release.id })).data;
      }
    }
  }
  return { url: release.html_url, assets: [...new Set([...release.assets.map((x) => x.name), ...files.map((f) => f.name)])] };
}

/** How often `publishRelease` re-reads the release and retries one asset before giving up. */
const RELEASE_ASSET_ATTEMPTS = 5;

/**
 * Whether a published asset already holds exactly `data`, as cheaply as GitHub allows: a different size or
 * an unfinished upload is a difference (no download); a `digest` (`sha256:<hex>`, set on uploads since 2025)
 * is compared with ours (no download); only an equal-sized asset without a digest is downloaded and compared
 * byte by byte. `'gone'` when it was deleted meanwhile.
 */
async function assetHolds(
  a: Pick<AuditArgs, 'octokit' | 'owner' | 'repo'>,
  asset: { id: number; size: number; state: string; digest?: string | null },
  data: Buffer,
): Promise<boolean | 'gone'> {
  if (asset.state !== 'uploaded' || asset.size !== data.length) return false;
  if (asset.digest) {
    const [algo, hex] = asset.digest.split(':', 2);
    if (algo === 'sha256' && hex) return hex.toLowerCase() === createHash('sha256').update(data).digest('hex');
  }
  try {
    const res = await a.octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
      owner: a.owner,
      repo: a.repo,
      asset_id: asset.id,
      headers: { accept: 'application/octet-stream' },
    });
    return Buffer.from(res.data as unknown as ArrayBuffer).equals(data);
  } catch (e) {
    if ((e as { status?: number }).status === 404) return 'gone';
    throw e;
  }
}
