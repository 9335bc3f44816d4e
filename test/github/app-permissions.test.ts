import { afterEach, describe, expect, it } from 'vitest';
import { git } from '../support/repo.js';
import { checkRuns, commandPlan, examplePlan, startAppWorld, type AppWorld } from './app-world.js';

/**
 * An installation that lacks a permission the app needs is told which one, and nothing runs. (Every
 * other App test installs the App with exactly what app.yml asks for: see app-manifest.ts.)
 */
describe('an installation without the permissions the app needs', () => {
  let w: AppWorld | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it('without contents: write, a plan commit gets an action-required agora check naming it, and the log says it too', async () => {
    w = await startAppWorld({ permissions: { checks: 'write', contents: 'read', pull_requests: 'read' } });
    const sha = await w.sim.push(w.fullName, { branch: 'ro', files: { 'plan.json': await examplePlan() }, message: 'Add the plan' });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect([...checks.keys()]).toEqual(['agora']);
    const agora = checks.get('agora')!;
    expect(agora).toMatchObject({ status: 'completed', conclusion: 'action_required' });
    expect(agora.output.title).toBe('Missing permission: contents: write');
    expect(agora.details_url).toBe(`${w.sim.sim.urls.html}/${w.fullName}/settings/installations`); // where to act
    expect(agora.output.summary).toContain('contents: write (granted: read)');
    expect(agora.output.summary).toContain('Permissions & events');
    expect(w.errors.join('\n')).toMatch(/the installation on octo\/demo lacks contents: .*contents: write \(granted: read\)/);
    expect(git(w.sim.repoDir(w.fullName), 'for-each-ref', 'refs/agora/')).toBe('');
  });

  it('without workflows: write, a plan that locks .github/workflows is refused at intake, naming the lock and the fix', async () => {
    w = await startAppWorld(); // exactly what app.yml asks for, which has no workflows permission
    const text = commandPlan('wf', [
      { id: 'code', run: 'echo a > a.txt', locks: ['a.txt'] },
      { id: 'ci', run: 'mkdir -p .github/workflows && echo "on: push" > .github/workflows/ci.yml', locks: ['.github/workflows/ci.yml'] },
    ]);
    const sha = await w.sim.push(w.fullName, { branch: 'wf', files: { 'plan.json': text }, message: 'A plan that writes a workflow' });
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    expect([...checks.keys()]).toEqual(['agora']); // nothing ran
    const agora = checks.get('agora')!;
    expect(agora).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(agora.output.summary).toContain('$.items[1].resourceLocks[0]');
    expect(agora.output.summary).toContain('workflows: write');
    expect(git(w.sim.repoDir(w.fullName), 'for-each-ref', '--format=%(refname)', 'refs/agora/runs/')).toBe('');
  });

  it('without checks: write nothing can be shown on GitHub: the log line names every missing permission', async () => {
    w = await startAppWorld({ permissions: { contents: 'write' } });
    const sha = await w.sim.push(w.fullName, { branch: 'nochecks', files: { 'plan.json': await examplePlan() }, message: 'Add the plan' });
    await w.quiesce();
    // (The installation cannot even read checks: ask the simulator's state.)
    expect([...w.sim.sim.state.checkRuns.values()].filter((c) => c.headSha === sha)).toEqual([]);
    const log = w.errors.join('\n');
    expect(log).toContain('checks: write (granted: none)');
    expect(log).toContain('pull_requests: read (granted: none)');
    expect(log).not.toContain('contents: write (granted');
    expect(git(w.sim.repoDir(w.fullName), 'for-each-ref', 'refs/agora/')).toBe('');
  });
});
