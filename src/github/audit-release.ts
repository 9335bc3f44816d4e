import { errorMessage } from '../errors.js';
import { runIdProblem } from '../plan/ids.js';
import { auditStatement } from '../audit/bundle.js';
import { buildAuditBundle } from '../audit/build-bundle.js';
import { parseAuditBundle } from '../audit/verify/parse.js';
import type { SignedAudit } from '../audit/signers.js';
import { signAudit, signatureLine, signerTrust, type AppSignature, type AppSigner } from './app-signer.js';
import { assetDownloads, downloadAsset, publishedRelease, publishRelease, ReleaseRefused, releaseTag, type ReleaseFile } from './run-release.js';
import { renderReleaseReport, reportAssetName, reportLine, type ReportSource } from './release-report.js';
import { verifyBundle } from '../audit/verify/pipeline.js';
import type { GitStore, Oid } from '../git/types.js';
import type { RunRefs } from '../runs/refs.js';
import { readRun, type StoredRun } from '../runs/state-store.js';
import type { Octokit } from './octokit.js';
import { fitCheckText } from './check-text.js';
import { codeSpan, plainText } from './untrusted-markdown.js';
import { trailers } from './plan-commit.js';
import { checkBranch } from '../runs/branch-check.js';
import { GATE_CHECK_NAME, gateExternalId } from './check-names.js';
import { auditNotProducedNote, peopleNote, problemList, regateSummary } from './gate-text.js';

export type { AppSigner } from './app-signer.js';

/**
 * The end of a run on GitHub: the audit bundle (anchored in refs/agora/anchors/<run>, pushed; signed with
 * the app's key when it has one), attached to a prerelease `agora-run-<run>-<root>` (one per bundle, see
 * run-release.ts) with the run report beside it (release-report.ts), and the merge gate
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
  /** Where the run report attached beside the bundle is rendered from (release-report.ts); no report without. */
  report?: ReportSource;
  clock: () => number;
}

export interface AuditOutcome {
  conclusion: 'success' | 'failure';
  problems: string[];
  /** One line for the run check. */
  note: string;
  releaseUrl: string | null;
  assets: string[];
  /** The run report's browser download URL, when the release holds one. */
  reportUrl: string | null;
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
  const why = errorMessage(e) ?? String(e);
  const hint = (e as { hint?: string }).hint;
  const problem = `the audit bundle of run \`${a.run.runId}\` could not be produced: ${why}`;
  await postGate(a, a.gateSha, a.run.runId, 'failure', {
    title: 'Not audited: the audit could not be produced',
    summary: [
      `Run ${codeSpan(a.run.runId)} (${a.run.state.status}).`,
      '',
      'Problems:',
      ...problemList([problem]),
      ...(hint ? ['', `What to do: ${plainText(hint)}`] : []),
    ].join('\n'),
  });
  return {
    conclusion: 'failure',
    problems: [problem],
    releaseUrl: null,
    assets: [],
    reportUrl: null,
    note: auditNotProducedNote(a.gateSha, a.run.runId, why),
  };
}

/**
 * An earlier try of this finish published this very bundle (same root, same release): its assets'
 * bytes, downloaded, or null when there is no such release or it lacks the bundle.
 */
async function earlierPublished(a: AuditArgs, rel: Awaited<ReturnType<typeof publishedRelease>>, names: { bundle: string; sigstore: string }) {
  const asset = (name: string) => rel?.assets.find((x) => x.name === name && x.state === 'uploaded');
  const bundleAsset = asset(names.bundle);
  if (!rel || !bundleAsset) return null;
  const bytes = await downloadAsset(a, bundleAsset.id);
  const sigAsset = asset(names.sigstore);
  const sigBytes = sigAsset ? await downloadAsset(a, sigAsset.id) : null;
  if (bytes === 'gone' || sigBytes === 'gone') return null;
  return {
    url: rel.html_url,
    assets: rel.assets.map((x) => x.name),
    downloads: assetDownloads(rel.assets),
    text: bytes.toString('utf8'),
    sigstore: sigBytes?.toString('utf8') ?? null,
  };
}

/**
 * Publishes the bundle and posts the gate. `raced`: this finish lost the publish race to another writer
 * of the same bundle (a replica finishing the same run), whose release holds other bytes for these
 * assets: this second pass checks the published bytes, as people will download them, and says so.
 */
async function publishAudit(a: AuditArgs, bundle: Awaited<ReturnType<typeof buildAuditBundle>>, raced?: string[]): Promise<AuditOutcome> {
  const { runId } = a.run;
  const names = { bundle: `${runId}.audit.json`, sigstore: `${runId}.audit.sigstore.json` };
  const tag = releaseTag(runId, bundle.root);
  const existing = await publishedRelease(a, tag);
  const earlier = await earlierPublished(a, existing, names);
  let sig: AppSignature | undefined;
  let signError: string | undefined;
  let text: string;
  if (earlier) {
    // The gate is about what people download: the published bytes, not a second signature of the same root.
    text = earlier.text;
    const record = parseAuditBundle(text, names.bundle).signature;
    if (a.signer && earlier.sigstore !== null && record)
      sig = { signed: { bundle: JSON.parse(earlier.sigstore) as SignedAudit['bundle'], record }, ...(await signerTrust(a.signer)) };
    else if (a.signer) signError = `release ${tag} holds this bundle unsigned`;
  } else {
    if (a.signer) {
      try {
        sig = await signAudit(a.signer, auditStatement(bundle));
        bundle.signature = sig.signed.record;
      } catch (e) {
        // The bundle is still published (anchored, unsigned); the gate fails, naming why it is not signed.
        signError = errorMessage(e);
      }
    }
    text = `${JSON.stringify(bundle, null, 2)}\n`;
  }
  // The gate checks the bytes that are published, not the object they came from.
  const published = parseAuditBundle(text, names.bundle);
  published.report = await verifyBundle(published, {
    store: a.store,
    refs: a.refs,
    ...(sig?.trust ? { sigstoreBundle: sig.signed.bundle, ...sig.trust } : {}),
    requireSignature: Boolean(sig?.trust),
    // The gate holds the bundle to this run and, where a signature binds it, this repository: what a
    // reviewer's `agora verify --run R --repository OWNER/NAME --key …` will hold it to.
    expect: { runId, ...(sig?.trust && a.repositoryId !== undefined ? { repository: `${a.owner}/${a.repo}` } : {}) },
  });
  // The gate's problems but those of writing the release: known before it is written, so the report shows them.
  const checked: string[] = [];
  if (signError !== undefined) checked.push(`the audit could not be signed: ${signError}`);
  if (a.run.state.status !== 'done') {
    const bad = Object.values(a.run.state.items).filter((i) => i.status !== 'done');
    checked.push(`the run is ${a.run.state.status}: ${bad.map((i) => `${i.id} ${i.status}`).join(', ')}`);
  }
  for (const f of published.report.failures) {
    if (f.code !== 'not-terminal') checked.push(`audit ${f.code}${f.item ? ` (${f.item})` : ''}: ${f.message}`);
  }
  if (a.landingRefused !== undefined) checked.push(`GitHub refused the push of the patch commits onto the branch: ${a.landingRefused}`);
  const branch = await checkBranch(a.store, a.gateSha, branchRun(a.run));
  checked.push(...branch.problems);

  const problems: string[] = [];
  let reportProblem: string | undefined;
  let release: { url: string | null; assets: string[]; downloads: Record<string, string> } = earlier ?? { url: null, assets: [], downloads: {} };
  const notes: string[] = [];
  if (raced)
    notes.push(
      `Another writer published release ${codeSpan(tag)} first; its ${raced.map(codeSpan).join(', ')} ${raced.length === 1 ? 'is' : 'are'} not the bytes this finish made (another signature of the same root), so the gate checks the published bytes.`,
    );
  if (!earlier) {
    const files: ReleaseFile[] = [{ name: names.bundle, data: `${JSON.stringify({ ...bundle, report: published.report }, null, 2)}\n` }];
    if (sig) files.push({ name: names.sigstore, data: `${JSON.stringify(sig.signed.bundle, null, 2)}\n` });
    if (a.report) {
      const page = await renderReleaseReport({ ...a, runId, now: a.clock(), bundle }, a.report, {
        verdict: published.report,
        sha: a.gateSha,
        problems: checked,
      });
      if ('file' in page) files.push(page.file);
      else reportProblem = page.problem;
    }
    try {
      const done = await publishRelease(
        {
          ...a,
          target: a.gateSha,
          title: `Agora run ${runId}`,
          // A draft of this finish is younger than the run's end (an hour allows for clocks that differ).
          ...(a.run.state.finishedAt !== undefined ? { draftsSince: a.run.state.finishedAt - 3_600_000 } : {}),
          body: `Audit bundle of agora run \`${runId}\` (${a.run.state.status}), Merkle root \`${bundle.root}\`. Verify with \`agora verify ${names.bundle} --repo .\`.`,
        },
        tag,
        files,
        existing,
      );
      // Lost to another writer whose release holds other bytes: check theirs, the ones people download.
      if (done.foreign && done.differs.length > 0 && !raced && existing === null) return publishAudit(a, bundle, done.differs);
      if (done.differs.length === 0) release = done;
      else
        problems.push(
          `release ${tag} is published without this bundle's ${done.differs.join(', ')} (missing, not fully uploaded, or other bytes); Agora never changes a published release: delete that release to let a Retry or a new run publish its own`,
        );
    } catch (e) {
      // GitHub declined the release for good (e.g. an immutable release of this tag without the bundle): the gate says so.
      if (!(e instanceof ReleaseRefused)) throw e;
      problems.push(`the audit bundle could not be published: ${e.message}`);
    }
  }

  problems.push(...checked);
  const conclusion = problems.length === 0 ? 'success' : 'failure';
  const reportUrl = release.downloads[reportAssetName(runId)] ?? null;
  const reportText = a.report || reportUrl ? reportLine(runId, release, reportProblem) : null;
  const summary = [
    `Run \`${runId}\` (${a.run.state.status}). Audit bundle root \`${bundle.root}\`, ${bundle.entries.length} entries, claim **${published.report.claim}** (${published.report.guarantee}).`,
    signatureLine(a.signer, sig, signError),
    release.url ? `Release: ${release.url} — assets ${release.assets.map(codeSpan).join(', ')}.` : 'Release: not published.',
    ...(reportText ? [reportText] : []),
    ...notes,
    '',
    problems.length === 0
      ? `The bundle verifies, and ${branch.people.length ? 'every commit above the ones listed below' : 'every commit after the plan commit'} is an audited patch.`
      : 'Problems:',
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
    reportUrl,
    note: [
      `Audit: \`agora / audit\` is **${conclusion}** on ${a.gateSha.slice(0, 12)}${release.url ? `; bundle attached to ${release.url}` : ''}.`,
      ...(reportText ? [reportText] : []),
    ].join('\n'),
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
export async function regate(a: {
  octokit: Octokit;
  owner: string;
  repo: string;
  store: GitStore;
  refs: RunRefs;
  head: Oid;
  /** Brings the run's patch refs and commits into `store` (an event fetches only the runs' state refs). */
  fetchPatches: (runId: string) => Promise<void>;
}): Promise<string | null> {
  let runId: string | undefined;
  let at: Oid | undefined = a.head;
  for (let n = 0; at && n < 500 && !runId; n += 1) {
    const c = await a.store.readCommit(at);
    runId = trailers(c.message).get('Agora-Run');
    at = c.parents[0];
  }
  // The trailer is whatever a pusher wrote: only a run id Agora could have made names a run.
  if (!runId || runIdProblem(runId)) return null;
  const run = await readRun(a.store, a.refs, runId);
  if (!run || run.state.status === 'running') return null;
  await a.fetchPatches(runId);
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
