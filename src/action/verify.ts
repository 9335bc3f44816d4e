import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import * as core from '@actions/core';
import type { Octokit } from '@octokit/rest';
import { parseAuditBundle } from '../audit/verify/parse.js';
import { verifyBundle } from '../audit/verify/pipeline.js';
import { signaturePin } from '../audit/verify/options.js';
import { isAgoraError } from '../errors.js';
import type { GitStore } from '../git/types.js';
import { readAnchor } from '../runs/anchor.js';
import { checkBranch } from '../runs/branch-check.js';
import { RunRefs } from '../runs/refs.js';
import type { StoredRun } from '../runs/state-store.js';
import { fetchForVerify } from './fetch-repository.js';
import { actionOctokit } from './octokit.js';
import { readVerifyInputs } from './inputs.js';
import { readPullRequestEvent, type PullRequestEvent } from './pull-request-event.js';
import { MAX_DEPTH, runsOfHead } from './pull-request-runs.js';
import { publishedBundle, type PublishedBundle } from '../github/published-bundle.js';
import { signerTrust, type SignerTrust } from './verify-pins.js';
import { verifySummary, type RunVerdict } from './verify-summary.js';

/**
 * `mode: verify`: the merge gate as a workflow step. For the pull request's head (from the event, not the
 * merge commit checked out), it finds the runs of the nearest plan commit, downloads each run's published
 * audit bundle, verifies it against the repository as `agora verify --repo` does (and against the pinned
 * signer, which makes the signature mandatory), and checks that every commit after the plan commit is one
 * of the run's audited patches. The job summary says what was checked; the job fails otherwise.
 */
export async function verifyMode(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const inputs = readVerifyInputs();
  const event = await readPullRequestEvent(env);
  const refs = new RunRefs(inputs.refNamespace);
  const work = join(env.RUNNER_TEMP || tmpdir(), `agora-verify-${process.pid}`);
  const store = await core.group(`Fetching ${refs.ns}* and the pull request's commits`, () =>
    fetchForVerify({ dir: join(work, 'repository.git'), cloneUrl: event.cloneUrl, token: inputs.token, refs, commits: [event.head, event.base] }),
  );
  const trust = await signerTrust(inputs, store.gitdir, event.base);
  const found = await runsOfHead(store, refs, event.head);
  const octokit = actionOctokit(inputs.token, env);
  const verdicts: RunVerdict[] = [];
  for (const run of found.runs) {
    verdicts.push(
      await core.group(`Verifying run ${run.runId}`, () =>
        verifyRun({ octokit, store, refs, event, run, trust, dir: work, waitMs: inputs.waitForReleaseSeconds * 1000 }),
      ),
    );
  }
  const problems = verdicts.flatMap((v) => v.problems);
  if (found.runs.length === 0) {
    problems.push(
      `no Agora run started on any of the ${found.looked} commits below the head ${event.head.slice(0, 12)}${found.looked >= MAX_DEPTH ? ` (looked at the nearest ${MAX_DEPTH})` : ''}`,
    );
  }
  const passed = problems.length === 0;
  await core.summary.addRaw(verifySummary({ event, planCommit: found.planCommit, verdicts, problems, pin: signaturePin(trust) }), true).write();
  core.setOutput('run-id', found.runs.map((r) => r.runId).join(' '));
  core.setOutput('status', passed ? 'verified' : 'failed');
  core.setOutput('bundle-path', verdicts.flatMap((v) => (v.bundlePath ? [v.bundlePath] : [])).join(' '));
  if (!passed) {
    core.setFailed(`the pull request's head ${event.head.slice(0, 12)} is not audited:\n${problems.map((p) => `- ${p}`).join('\n')}`);
  } else {
    core.info(`verified: ${verdicts.map((v) => `${v.runId} (${v.claim})`).join(', ')}; every commit after the plan commit is an audited patch`);
  }
}

interface RunCheck {
  octokit: Octokit;
  store: GitStore;
  refs: RunRefs;
  event: PullRequestEvent;
  run: StoredRun;
  trust: SignerTrust;
  dir: string;
  /** How long to wait for the release of an anchored root to be published. */
  waitMs: number;
}

/**
 * The published bundle, waiting up to `waitMs` while its release is not published yet: a push by the
 * App starts this workflow as soon as the patches land, and the App anchors the run's root before it
 * publishes the release, so the first look can come a few seconds early.
 */
async function awaitPublished(look: () => Promise<PublishedBundle>, waitMs: number): Promise<PublishedBundle> {
  const until = Date.now() + waitMs;
  for (;;) {
    const found = await look();
    if (found.ok || !found.pending || Date.now() >= until) return found;
    core.info(
      `the release is not published yet; looking again in ${RELEASE_POLL_MS / 1000} s (waiting up to ${Math.ceil((until - Date.now()) / 1000)} s more)`,
    );
    await new Promise((r) => setTimeout(r, RELEASE_POLL_MS));
  }
}

const RELEASE_POLL_MS = 5_000;

async function verifyRun(a: RunCheck): Promise<RunVerdict> {
  const { run } = a;
  const verdict: RunVerdict = {
    runId: run.runId,
    status: run.state.status,
    problems: [],
    people: [],
    claim: 'none',
    release: null,
    bundlePath: null,
    signature: 'none',
  };
  if (run.state.status !== 'done') {
    const bad = Object.values(run.state.items).filter((i) => i.status !== 'done');
    verdict.problems.push(`run ${run.runId} is ${run.state.status}${bad.length ? `: ${bad.map((i) => `${i.id} ${i.status}`).join(', ')}` : ''}`);
  }
  const anchor = await readAnchor(a.store, a.refs, run.runId);
  if (!anchor?.record) {
    verdict.problems.push(
      anchor
        ? `run ${run.runId}: ${anchor.problem}`
        : `run ${run.runId} has no anchor (${a.refs.anchor(run.runId)}): it has not ended, so it has no audit bundle yet`,
    );
  } else {
    await checkPublished(a, anchor.record.root, verdict);
  }
  const branch = await checkBranch(a.store, a.event.head, { runId: run.runId, base: run.state.base, items: Object.values(run.state.items) });
  verdict.problems.push(...branch.problems);
  verdict.people = branch.people;
  return verdict;
}

/** Downloads the release's bundle, writes it on the runner, verifies it; adds what failed to `verdict`. */
async function checkPublished(a: RunCheck, root: string, verdict: RunVerdict): Promise<void> {
  const { runId } = a.run;
  const published = await awaitPublished(() => publishedBundle(a.octokit, a.event.repository, runId, root), a.waitMs);
  if (!published.ok) {
    verdict.problems.push(published.problem);
    return;
  }
  verdict.release = { tag: published.tag, url: published.url };
  verdict.bundlePath = join(a.dir, `${runId}.audit.json`);
  await mkdir(a.dir, { recursive: true });
  await writeFile(verdict.bundlePath, published.bundle);
  if (published.sigstore !== null) await writeFile(join(a.dir, `${runId}.audit.sigstore.json`), published.sigstore);
  const pin = signaturePin(a.trust);
  let bundle;
  try {
    bundle = parseAuditBundle(published.bundle, `${published.tag}/${runId}.audit.json`);
  } catch (e) {
    if (!isAgoraError(e)) throw e;
    verdict.problems.push(e.message);
    return;
  }
  const report = await verifyBundle(bundle, {
    store: a.store,
    refs: a.refs,
    ...a.trust,
    // Without a pinned signer there is nothing to check a signature against: the claim rests on the anchor.
    ...(pin && published.sigstore !== null ? { sigstoreBundle: published.sigstore } : {}),
    requireSignature: pin !== null,
    expect: { runId, planCommit: a.run.state.base, ...(pin ? { repository: a.event.repository } : {}) },
  });
  verdict.claim = report.intact ? `${report.claim} (${report.guarantee})` : 'none';
  verdict.signature = pin === null ? (bundle.signature ? 'unchecked' : 'none') : 'checked';
  for (const f of report.failures) if (f.code !== 'not-terminal') verdict.problems.push(`audit ${f.code}${f.item ? ` (item ${f.item})` : ''}: ${f.message}`);
}
