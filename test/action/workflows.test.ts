import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseWorkflow, WorkflowFileError } from '@agora/github-sim/actions/workflow';

/**
 * The workflow files this repository ships — its own CI and the examples users copy — are checked with
 * the workflow schema the simulator's Actions runtime uses (packages/github-sim/src/actions/workflow.ts: the
 * syntax GitHub accepts, as far as the simulator knows it), and for what each must say.
 * examples/workflows/agora-verify.yml is also run as is, end to end, by verify-action.test.ts.
 */
const text = (path: string) => readFile(path, 'utf8');

describe('shipped workflow files', () => {
  it("every file parses under the simulator's workflow schema", async () => {
    const files = ['.github/workflows/ci.yml', ...(await readdir('examples/workflows')).map((f) => join('examples/workflows', f))];
    expect(files).toEqual(
      expect.arrayContaining(['examples/workflows/agora-verify.yml', 'examples/workflows/agora-run.yml', 'examples/workflows/agora-worker.yml']),
    );
    for (const f of files) await expect(parseWorkflow(f, '')).rejects.toThrow(WorkflowFileError);
    for (const f of files) await parseWorkflow(f, await text(f));
  });

  it("ci.yml runs `npm ci` and the README's test command on Node 20 and 24", async () => {
    const readme = await text('README.md');
    const command = /## Run the tests\s+```sh\n([^\n]+)\n```/.exec(readme)?.[1];
    expect(command).toBe('npm test');
    const ci = await parseWorkflow('ci.yml', await text('.github/workflows/ci.yml'));
    const job = ci.workflow.jobs.test!;
    expect((job.strategy as { matrix: { node: string[] } }).matrix.node).toEqual(['20', '24']);
    const steps = job.steps;
    expect(String(steps.find((s) => s.uses?.startsWith('actions/setup-node@'))?.with?.['node-version'])).toBe('${{ matrix.node }}');
    const runs = steps.flatMap((s) => (s.run === undefined ? [] : [String(s.run).trim()]));
    expect(runs.some((r) => r.startsWith('npm ci'))).toBe(true);
    expect(runs.at(-1)).toBe(command);
    expect(steps.findIndex((s) => String(s.run).startsWith('npm ci'))).toBeLessThan(steps.length - 1);
  });

  it('each example uses the Agora Action in the mode it is for, with the permissions that mode needs', async () => {
    for (const [file, mode, trigger] of [
      ['agora-verify.yml', 'verify', 'pull_request'],
      ['agora-run.yml', 'run', 'pull_request'],
      ['agora-worker.yml', 'worker', 'workflow_dispatch'],
    ] as const) {
      const src = await text(join('examples/workflows', file));
      const wf = await parseWorkflow(file, src);
      expect(Object.keys(wf.on)).toEqual([trigger]);
      const steps = Object.values(wf.workflow.jobs).flatMap((j) => j.steps);
      const agora = steps.filter((s) => s.uses === 'agora-orchestrator/agora/action@v1');
      expect(agora.map((s) => s.with?.mode)).toEqual([mode]);
      expect(src.startsWith('# DRAFT'), file).toBe(false);
    }
    const verify = await parseWorkflow('agora-verify.yml', await text('examples/workflows/agora-verify.yml'));
    // Verify needs to read, nothing more.
    expect(verify.workflow.permissions).toEqual({ contents: 'read' });
    // Run pushes patches and refs/agora/*, writes checks and signs with the job's OIDC identity.
    const run = await parseWorkflow('agora-run.yml', await text('examples/workflows/agora-run.yml'));
    expect(run.workflow.permissions).toEqual({ contents: 'write', checks: 'write', 'id-token': 'write' });
    // Worker pushes only its claim and result refs; its job is named for the App to match webhooks to the attempt.
    const worker = await parseWorkflow('agora-worker.yml', await text('examples/workflows/agora-worker.yml'));
    expect(worker.workflow.permissions).toEqual({ contents: 'write' });
    const workerJobs = (parse(await text('examples/workflows/agora-worker.yml')) as { jobs: Record<string, { name?: string }> }).jobs;
    expect(Object.values(workerJobs)[0]!.name).toBe('agora ${{ inputs.run }} ${{ inputs.item }} ${{ inputs.attempt }}');
    // One job per pull request at a time, never cancelled mid-run (a later push queues behind it).
    expect((parse(await text('examples/workflows/agora-run.yml')) as { concurrency?: unknown }).concurrency).toEqual({
      group: 'agora-${{ github.event.pull_request.number }}',
      'cancel-in-progress': false,
    });
  });
});
