import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Octokit } from '@octokit/rest';
import type { EventOutcome } from '../github/app-events.js';
import { GATE_CHECK_NAME } from '../github/check-names.js';
import { runSummary } from '../github/check-text.js';
import { publishedBundle } from '../github/published-bundle.js';
import { codeSpan, plainText } from '../github/untrusted-markdown.js';
import { readAnchor } from '../runs/anchor.js';
import { RunRefs } from '../runs/refs.js';
import { readRun } from '../runs/state-store.js';
import { fetchForVerify } from './fetch-repository.js';
import type { PullRequestEvent } from './pull-request-event.js';

/**
 * What `mode: run` tells the job once the App's service is idle: read back from GitHub as anyone would
 * see it (the run's state ref, the gate on the branch's head now, the published release), not from the
 * driver's memory. The job fails unless the run is done and the gate is green.
 */
export interface RunReport {
  runId: string | null;
  /** The run's status (`done`, `failed`, …), or what the commit came to (`invalid`, `ignored`, `not-started`). */
  status: string;
  bundlePath: string | null;
  summary: string;
  /** Why the job fails; null when it succeeds. */
  failure: string | null;
  /** The log line of a success. */
  line: string;
}

export async function runReport(a: {
  octokit: Octokit;
  event: PullRequestEvent;
  refNamespace: string;
  token: string;
  outcome: EventOutcome | undefined;
  dir: string;
}): Promise<RunReport> {
  const { event, outcome } = a;
  const heading = (what: string) =>
    `## Agora run: ${what}\n\nPull request #${event.number}, plan commit ${codeSpan(event.head.slice(0, 12))} on ${codeSpan(event.headRef)}.\n\n`;
  if (!outcome || outcome.kind === 'duplicate') {
    const failure = 'the plan commit could not be taken in: the error is in the log above';
    return { runId: null, status: 'not-started', bundlePath: null, summary: `${heading('not started')}${failure}.\n`, failure, line: '' };
  }
  if (outcome.kind === 'ignored') {
    return {
      runId: null,
      status: 'ignored',
      bundlePath: null,
      summary: `${heading('nothing to run')}${plainText(outcome.why)}.\n`,
      failure: null,
      line: `agora: nothing to run (${outcome.why})`,
    };
  }
  if (outcome.kind === 'invalid') {
    const list = outcome.problems.map((p) => `- ${codeSpan(p.path)}: ${plainText(p.message)}`).join('\n');
    const failure = `the plan is invalid (${outcome.problems.length} problem${outcome.problems.length === 1 ? '' : 's'}; the \`agora\` check lists them):\n${outcome.problems.map((p) => `- ${p.path}: ${p.message}`).join('\n')}`;
    return { runId: null, status: 'invalid', bundlePath: null, summary: `${heading('invalid plan')}Nothing ran.\n\n${list}\n`, failure, line: '' };
  }
  return finishedRun(a, outcome.runId, outcome.kind);
}

async function finishedRun(
  a: { octokit: Octokit; event: PullRequestEvent; refNamespace: string; token: string; dir: string },
  runId: string,
  kind: 'started' | 'exists' | 'regated',
): Promise<RunReport> {
  const { octokit, event } = a;
  const [owner, repo] = event.repository.split('/') as [string, string];
  const refs = new RunRefs(a.refNamespace);
  const store = await fetchForVerify({ dir: join(a.dir, 'report.git'), cloneUrl: event.cloneUrl, token: a.token, refs, commits: [event.head] });
  const run = await readRun(store, refs, runId);
  if (!run) {
    const failure = `run ${runId} has no state at ${refs.run(runId)} on GitHub`;
    return { runId, status: 'not-started', bundlePath: null, summary: `## Agora run: not started\n\n${plainText(failure)}.\n`, failure, line: '' };
  }
  const { state } = run;
  const head = await branchHead(octokit, owner, repo, event.headRef);
  const gate = head
    ? (await octokit.rest.checks.listForRef({ owner, repo, ref: head, check_name: GATE_CHECK_NAME, filter: 'latest' })).data.check_runs[0]
    : undefined;
  const gateText = gate ? `${gate.status === 'completed' ? (gate.conclusion ?? 'none') : gate.status}` : 'not set';
  let bundlePath: string | null = null;
  let releaseLine = 'No release: the run has no anchored audit root.';
  const anchor = await readAnchor(store, refs, runId);
  if (anchor?.record) {
    const published = await publishedBundle(octokit, event.repository, runId, anchor.record.root);
    if (published.ok) {
      bundlePath = join(a.dir, `${runId}.audit.json`);
      await writeFile(bundlePath, published.bundle);
      if (published.sigstore !== null) await writeFile(join(a.dir, `${runId}.audit.sigstore.json`), published.sigstore);
      releaseLine = `Audit bundle: release [${plainText(published.tag)}](${published.url})${published.sigstore === null ? ' (not signed)' : ", signed keyless with this job's OIDC identity"}.`;
    } else releaseLine = `No audit bundle: ${plainText(published.problem)}.`;
  }
  const notes = [
    kind === 'exists' && state.status === 'running'
      ? "This commit's run already existed and is still driven by another process: its lease did not run out while this job waited."
      : '',
    kind === 'exists' && state.status !== 'running'
      ? "This commit's run already existed (an earlier job of this head): it was taken over from its refs, or had ended."
      : '',
    kind === 'regated' ? 'The head is a later push on a branch the run patched: the gate was evaluated again.' : '',
    `Gate ${codeSpan(GATE_CHECK_NAME)} on ${head ? codeSpan(head.slice(0, 12)) : 'the branch (gone)'}: **${gateText}**.`,
    releaseLine,
  ].filter(Boolean);
  const summary = `## Agora run: ${state.status}\n\n${notes.join('\n\n')}\n\n${runSummary(run.plan, state)}\n`;
  const ok = state.status === 'done' && gate?.conclusion === 'success';
  const failure = ok
    ? null
    : `run ${runId} is ${state.status}${state.reason ? ` (${state.reason})` : ''} and the gate ${GATE_CHECK_NAME} is ${gateText}: the job summary lists every item`;
  return {
    runId,
    status: state.status,
    bundlePath,
    summary,
    failure,
    line: `agora: run ${runId} done, gate success on ${head?.slice(0, 12)}${bundlePath ? `, bundle ${bundlePath}` : ''}`,
  };
}

async function branchHead(octokit: Octokit, owner: string, repo: string, branch: string): Promise<string | null> {
  try {
    return (await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` })).data.object.sha;
  } catch (e) {
    if ((e as { status?: number }).status === 404) return null;
    throw e;
  }
}
