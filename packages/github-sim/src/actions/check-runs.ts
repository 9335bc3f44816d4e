/**
 * Each workflow job is a check run of the GitHub Actions app, as on GitHub: the same id as the job
 * (the job's `check_run_url` points at it), named as the job, in the Actions app's check suite for
 * the run's head commit, following the job's status and conclusion, and carrying as annotations the
 * `::error|warning|notice::` workflow commands the job's steps printed.
 */
import type { Sim } from '../sim.js';
import type { CheckAnnotation, CheckRun, User } from '../state.js';
import type { Annotation } from './commands.js';
import type { JobRecord, RunRecord } from './model.js';

/**
 * An annotation as the check run shows it: with no `file`, GitHub files it under `.github`; with
 * no `line`, at line 1; columns only when they are on one line (GitHub's rule for annotations).
 */
export function checkAnnotation(a: Annotation): CheckAnnotation {
  const start = a.line ?? 1;
  const end = a.endLine ?? start;
  const out: CheckAnnotation = { path: a.file ?? '.github', start_line: start, end_line: end, annotation_level: a.level, message: a.message };
  if (a.title !== null) out.title = a.title;
  if (start === end && a.column !== null) {
    out.start_column = a.column;
    out.end_column = a.endColumn ?? a.column;
  }
  return out;
}

/** Opens the check run of a job just queued. */
export async function openJobCheckRun(sim: Sim, run: RunRecord, job: JobRecord, appId: number, sender: User): Promise<void> {
  const repo = sim.repo(run.repo);
  const suite = await sim.suiteFor(repo, run.headSha, appId);
  const check: CheckRun = {
    id: job.id,
    suiteId: suite.id,
    repo: repo.fullName,
    appId,
    name: job.name,
    headSha: run.headSha,
    status: 'queued',
    conclusion: null,
    startedAt: job.createdAt,
    completedAt: null,
    detailsUrl: `${sim.urls.html}/${repo.fullName}/actions/runs/${run.id}/job/${job.id}`,
    externalId: null,
    output: { title: null, summary: null, text: null },
    annotations: [],
    actions: [],
  };
  sim.state.checkRuns.set(check.id, check);
  await sim.refreshSuite(repo, suite, sender);
}

/** Brings a job's check run up to the job: status, conclusion, times and annotations. */
export async function syncJobCheckRun(sim: Sim, job: JobRecord, sender: User): Promise<void> {
  const check = sim.state.checkRuns.get(job.id);
  if (!check) return;
  check.status = job.status;
  check.conclusion = job.conclusion;
  check.startedAt = job.startedAt;
  check.completedAt = job.completedAt;
  check.annotations = job.annotations.map(checkAnnotation);
  await sim.refreshSuite(sim.repo(check.repo), sim.state.checkSuites.get(check.suiteId)!, sender);
}
