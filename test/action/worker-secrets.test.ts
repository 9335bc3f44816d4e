import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scaled } from '../support/eventually.js';
import { checkRuns, runBound, until, type AppWorld } from '../github/app-world.js';
import { actionsConfig, startWorkerWorld, workerApi } from './worker-world.js';

const run = promisify(execFile);

/**
 * Secrets on the App's `actions` target, end to end on the simulator: the values are Actions secrets of
 * the repository (the App holds none), the shipped worker workflow hands them to the committed
 * action/dist as `toJSON(secrets)`, and the worker gives the item only the ones it declares.
 */
describe('the actions target with secrets', () => {
  let w: AppWorld;
  // Random canaries: found anywhere they should not be, they can only have come from this test.
  const canary = `canary-${randomBytes(12).toString('hex')}`;
  const other = `other-${randomBytes(12).toString('hex')}`;
  beforeAll(async () => {
    w = await startWorkerWorld(actionsConfig());
    w.sim.setActionsSecret(w.fullName, 'CANARY_TOKEN', canary);
    w.sim.setActionsSecret(w.fullName, 'OTHER_TOKEN', other);
  }, scaled(120_000));
  afterAll(async () => w?.close());

  it(
    'a declared secret reaches the item and nothing else does; it is masked in the job log and in no state, audit, patch, result or check text',
    async () => {
      const item = (id: string, script: string, secrets: string[], locks: string[]) => ({
        id,
        executor: 'command',
        inputs: { run: script, secrets },
        depends_on: [],
        resourceLocks: locks,
      });
      const items = [
        // Proves it saw the value (its hash lands in the patch), prints it (to be masked), lists its environment's names.
        item(
          'use',
          'echo "value=$CANARY_TOKEN"; printf %s "$CANARY_TOKEN" | sha256sum | cut -c1-64 > seen.txt; env | cut -d= -f1 | sort > names.txt; echo "other=[${OTHER_TOKEN:-}]"',
          ['CANARY_TOKEN'],
          ['seen.txt', 'names.txt'],
        ),
        // Writes the value into its workspace: the runner refuses the patch (the App has no value to look for).
        item('leak', 'printf "%s\\n" "$CANARY_TOKEN" > leak.txt', ['CANARY_TOKEN'], ['leak.txt']),
        // Puts the value into the items it emits: the runner pushes neither them nor the workspace.
        item(
          'emitleak',
          'echo x > emitleak.txt; printf \'{"items":[{"id":"x","executor":"command","inputs":{"run":"echo %s"},"depends_on":[],"resourceLocks":[]}]}\' "$CANARY_TOKEN" > "$AGORA_EMIT/items.json"',
          ['CANARY_TOKEN'],
          ['emitleak.txt'],
        ),
        // Declares a secret the repository does not have.
        item('absent', 'echo never > absent.txt', ['NOT_A_SECRET'], ['absent.txt']),
      ];
      const plan = `${JSON.stringify({ id: 'sec', queue: 'default', items }, null, 2)}\n`;
      const plansha = await w.sim.push(w.fullName, { branch: 'sec', files: { 'plan.json': plan }, message: 'Add the secrets plan' });
      w.sim.addRunner({ labels: ['agora'], name: 'runner-1' });
      w.sim.addRunner({ labels: ['agora'], name: 'runner-2' });
      await until('the agora check to complete', async () => (await checkRuns(w, plansha)).get('agora')?.status === 'completed', w, runBound(4, 3));
      await w.quiesce();
      await w.sim.sim.actions.idle();

      const checks = await checkRuns(w, plansha);
      const text = (name: string) => {
        const c = checks.get(name);
        return `${c?.output.title} ${c?.output.summary} ${c?.output.text ?? ''}`;
      };
      expect(checks.get('agora / use')?.conclusion, text('agora / use')).toBe('success');
      expect(checks.get('agora / leak')?.conclusion).toBe('failure');
      expect(text('agora / leak')).toMatch(/secret CANARY_TOKEN into its workspace \(leak\.txt\)/);
      expect(checks.get('agora / emitleak')?.conclusion).toBe('failure');
      expect(text('agora / emitleak')).toContain('items.json of item emitleak attempt 1 holds the value of secret CANARY_TOKEN');
      expect(checks.has('agora / x')).toBe(false);
      expect(checks.get('agora / absent')?.conclusion).toBe('failure');
      expect(text('agora / absent')).toContain('secret NOT_A_SECRET, which item absent declares, is not an Actions secret of this repository');

      // The item had the value (its hash), the declared name and none of the job's or the other secret.
      const git = w.sim.sim.repo(w.fullName).git;
      const refs = [...(await git.refs()).keys()];
      const patchRef = refs.find((r) => /^refs\/agora\/patches\/sec-[^/]+\/use$/.test(r))!;
      expect(patchRef).toBeDefined();
      expect((await git.text(['show', `${patchRef}:seen.txt`])).trim()).toBe(createHash('sha256').update(canary).digest('hex'));
      const names = (await git.text(['show', `${patchRef}:names.txt`])).split('\n');
      expect(names).toContain('CANARY_TOKEN');
      for (const hidden of ['OTHER_TOKEN', 'GITHUB_TOKEN', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN', 'ACTIONS_RUNTIME_TOKEN', 'INPUT_SECRETS'])
        expect(names).not.toContain(hidden);
      expect(refs.some((r) => /^refs\/agora\/patches\/sec-[^/]+\/leak$/.test(r))).toBe(false);

      // Masked in the job logs: the item printed it, the log shows ***.
      const api = workerApi(w);
      const runs = await api.runs();
      const jobs = (await Promise.all(runs.map((r) => api.jobsOf(Number(r.id))))).flat();
      const logs = (await Promise.all(jobs.map((j) => api.logOf(Number(j.id))))).join('\n');
      expect(logs).toContain('value=***');
      expect(logs).toContain('other=[]');
      // Nowhere: job logs, dispatch inputs, check runs of every commit, any object in the repository
      // (run state, audit log, patches, claims, results with the item's log, releases' tags), release assets.
      const everywhere: [string, string][] = [
        ['job logs', logs],
        ['dispatch inputs', JSON.stringify(runs.map((r) => w.sim.sim.actions.runs.get(Number(r.id))!.inputs))],
        ['check runs', JSON.stringify([...checks.values()])],
      ];
      for (const ref of refs.filter((r) => r.startsWith('refs/heads/'))) {
        everywhere.push([`check runs of ${ref}`, JSON.stringify([...(await checkRuns(w, (await git.resolve(ref, 'commit'))!)).values()])]);
      }
      const objects = await run('git', ['-C', w.sim.repoDir(w.fullName), 'cat-file', '--batch-all-objects', '--batch'], {
        maxBuffer: 256 << 20,
        encoding: 'latin1',
      });
      everywhere.push(['repository objects', objects.stdout]);
      const releases = (await w.octokit.request('GET /repos/{owner}/{repo}/releases', { owner: w.owner, repo: w.repo })).data;
      for (const release of releases) {
        for (const asset of release.assets) {
          const body = await w.octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
            owner: w.owner,
            repo: w.repo,
            asset_id: asset.id,
            headers: { accept: 'application/octet-stream' },
          });
          everywhere.push([`release asset ${asset.name}`, Buffer.from(body.data as unknown as ArrayBuffer).toString('latin1')]);
        }
      }
      // The scan can find what it looks for: the item's hash of the value is in the repository's objects.
      expect(objects.stdout).toContain(createHash('sha256').update(canary).digest('hex'));
      for (const [where, content] of everywhere) {
        for (const value of [canary, other, Buffer.from(canary).toString('base64'), Buffer.from(canary).toString('hex')]) {
          expect(content.includes(value), `${where} holds a secret's value`).toBe(false);
        }
      }
    },
    scaled(runBound(4, 6)),
  );
});
