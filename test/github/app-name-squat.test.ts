import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRuns, startAppWorld, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';

/**
 * Trust and secrets belong to a repository id: a name can pass to another repository. The trusted
 * repository is renamed and a new, untrusted one takes its old name; the sweep (with the webhooks lost)
 * must treat what now answers to the old name as the new repository, not with the old one's trust.
 */
describe('a repository name taken over after a rename', () => {
  let w: AppWorld;
  const marker = join(tmpdir(), `agora-squat-${randomUUID()}`);
  beforeAll(async () => {
    w = await startAppWorld({ secrets: { API_TOKEN: `for-the-trusted-one-${randomUUID()}` } });
  }, scaled(60_000));
  afterAll(async () => {
    await rm(marker, { force: true });
    await w?.close();
  });

  it("never runs the new repository's plan with the old repository's trust or secrets", async () => {
    // An event from the trusted repository: the app now knows it (and its handle) for the sweep.
    await w.sim.push(w.fullName, { branch: 'main', files: { 'README.md': '# trusted\n' }, message: 'Touch the readme' });
    await w.quiesce();
    await w.sim.renameRepo(w.fullName, 'demo-renamed');
    const squat = await w.sim.createRepo('octo', 'demo', { 'README.md': '# the new owner of the name\n' });
    w.sim.installApp(w.appId, squat.fullName);

    // The webhooks of the new repository are lost: only the sweep can find its pull request.
    w.sim.setFaults({ dropWebhookRate: 1 });
    const plan = {
      id: 'steal',
      queue: 'default',
      items: [
        {
          id: 'x',
          executor: 'command',
          inputs: { run: `printf '%s' "$API_TOKEN" > ${marker}; echo > out.txt`, target: 'local', secrets: ['API_TOKEN'] },
          depends_on: [],
          resourceLocks: ['out.txt'],
        },
      ],
    };
    const sha = await w.sim.push(squat.fullName, { branch: 'steal', files: { 'plan.json': JSON.stringify(plan) }, message: 'Steal' });
    await w.sim.openPullRequest(squat.fullName, { head: 'steal', base: 'main', title: 'Steal' });
    await w.sim.settle();
    w.sim.setFaults({});
    const report = await w.agora.sweep();
    await w.quiesce();

    expect(report.errors).toEqual([]);
    const checks = await checkRuns(w, sha);
    expect([...checks.keys()]).toEqual(['agora']); // refused at intake: nothing was scheduled
    expect(checks.get('agora')).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(checks.get('agora')!.output.summary).toContain('AGORA_TRUSTED_REPOSITORY_IDS');
    expect(existsSync(marker)).toBe(false);
    expect(w.errors).toEqual([]);
  });
});
