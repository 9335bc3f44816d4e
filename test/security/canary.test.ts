import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { BUSYBOX, DEFAULT_ENGINE, connectEngine } from '../docker/engine.js';
import { checkRuns, startAppWorld, until, runBound } from '../github/app-world.js';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';
import { scaled } from '../support/eventually.js';
import { findSecret, findSecretInObjects, refsOf, repositoryObjects } from '../support/secret-search.js';

/**
 * The canary: a run whose secret is a canary value, with items that print it, base64- and hex-encode it
 * into the log, wrap it across lines, end on a line holding it (the reason), and write it into a file.
 * Then everything Agora stored or sent is searched for the canary in every form (test/support/secret-search.ts):
 * every ref, every object of the repository decompressed, logs, state, audit entries, the bundle, and in the
 * app also the check runs, release assets, webhook payloads and GitHub's copy of the repository. Nothing
 * may hold it, except that the refused file's blob stays unreferenced in the object store of the machine
 * that ran the worker (docs/security.md): never in a ref, never pushed. On each target; later targets
 * (Actions) join here.
 */

afterAll(cleanupTempDirs);
const docker: Docker | undefined = await connectEngine();
const dockerEnv = { DOCKER_HOST: process.env.DOCKER_HOST ?? DEFAULT_ENGINE };

const CANARY = 'canary-Zx81?Qp4>Wm7-c4n4ry';

const PRINTERS: Record<string, string> = {
  says: 'echo "the token is $CANARY"',
  base64: `printf 'token=%s\\n' "$CANARY" | base64; printf '%s' "$CANARY" | base64`,
  hex: `printf '%s' "$CANARY" | od -An -tx1 | tr -d ' \\n'; echo`,
  wrapped: `printf '%s\\n' "$CANARY" | fold -w 7`,
  'fails-with-it': 'echo "giving up: $CANARY" >&2; exit 4',
};

function plan(id: string, target?: { target: 'docker'; image: string }): string {
  const items = [
    ...Object.entries(PRINTERS).map(([itemId, run]) => ({ id: itemId, run, locks: [] as string[] })),
    { id: 'writes-file', run: 'mkdir -p out && echo "$CANARY" > out/canary.txt', locks: ['out/'] },
    { id: 'honest', run: 'mkdir -p ok && echo fine > ok/ok.txt', locks: ['ok/'] },
  ].map((i) => ({ id: i.id, executor: 'command', inputs: { run: i.run, secrets: ['CANARY'], ...target }, depends_on: [], resourceLocks: i.locks }));
  return `${JSON.stringify({ id, queue: 'default', items }, null, 2)}\n`;
}

/** The config that offers the canary to the plan's items (a secret of Agora's own environment). */
const OFFERS_CANARY = "export const orch = { secrets: ['CANARY'] };\n";

/** The blob of the refused file: the one object that may hold the canary, unreferenced, where the worker ran. */
const REFUSED_BLOB = createHash('sha1')
  .update(`blob ${CANARY.length + 1}\0${CANARY}\n`)
  .digest('hex');

/** Every file under `dir` (recursively), except git's object store. */
function filesUnder(dir: string, skip: (path: string) => boolean = () => false): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (skip(path)) continue;
    const info = statSync(path, { throwIfNoEntry: false });
    if (info?.isDirectory()) out.push(...filesUnder(path, skip));
    else if (info?.isFile()) out.push(path);
  }
  return out;
}

interface Status {
  status: string;
  items: Array<{ id: string; status: string; reason?: string }>;
}

async function localCanary(runId: string, target?: { target: 'docker'; image: string }, env: Record<string, string> = {}): Promise<void> {
  const repo = makeRepo({ 'plan.json': plan(runId, target), 'agora.config.mjs': OFFERS_CANARY });
  const gitdir = join(repo, '.git');
  const run = await agora(repo, ['orch', 'run', 'plan.json'], { ...env, CANARY }, scaled(240_000));
  const status = JSON.parse((await agora(repo, ['orch', 'status', `${runId}-1`], env)).stdout) as Status;
  const byId = new Map(status.items.map((i) => [i.id, i]));
  // The items really ran: the printers printed (the logs show *** where the canary was), the file was refused.
  expect(byId.get('honest')?.status).toBe('done');
  expect(byId.get('says')?.status).toBe('done');
  expect(byId.get('fails-with-it')).toMatchObject({ status: 'failed', reason: 'exited with code 4: giving up: ***' });
  expect(byId.get('writes-file')?.status).toBe('failed');
  expect(byId.get('writes-file')?.reason).toContain('secret CANARY');
  const logs = await Promise.all(Object.keys(PRINTERS).map(async (id) => (await agora(repo, ['orch', 'logs', `${runId}-1`, id], env)).stdout));
  expect(logs.join('\n').split('***').length - 1).toBeGreaterThanOrEqual(6);
  await agora(repo, ['orch', 'audit', `${runId}-1`, '--out', join(gitdir, 'canary.audit.json')], env);

  const unreferenced = repositoryObjects(gitdir, 'all')
    .filter((o) => findSecret('', o.content, CANARY).length > 0)
    .map((o) => o.oid);
  const leaks = [
    ...findSecret('the output of orch run', run.stdout + run.stderr, CANARY),
    ...findSecret('orch status', JSON.stringify(status), CANARY),
    ...findSecret('the logs', logs.join('\n'), CANARY),
    ...findSecret('the refs', refsOf(gitdir), CANARY),
    ...findSecretInObjects(gitdir, 'referenced', CANARY),
    // Every other file of the repository: the audit bundle, live logs, needs, pidfiles, workspace indexes.
    ...filesUnder(gitdir, (p) => p === join(gitdir, 'objects')).flatMap((f) => findSecret(f, readFileSync(f), CANARY)),
    ...filesUnder(repo, (p) => p === gitdir).flatMap((f) => findSecret(f, readFileSync(f), CANARY)),
  ];
  expect(leaks).toEqual([]);
  expect(unreferenced.filter((oid) => oid !== REFUSED_BLOB)).toEqual([]);
}

describe('the canary, locally', () => {
  it('is nowhere Agora stored anything, on the local target', async () => {
    await localCanary('canary');
  });

  it.skipIf(!docker)('is nowhere Agora stored anything, on the docker target', async () => {
    await localCanary('canarydock', { target: 'docker', image: BUSYBOX }, dockerEnv);
  });
});

describe.skipIf(!docker)('the canary, in the app', () => {
  it(
    'is nowhere on GitHub (objects, refs, check runs, release assets, webhooks) after a run on the docker target',
    async () => {
      process.env.DOCKER_HOST ??= DEFAULT_ENGINE;
      const dir = await mkdtemp(join(tmpdir(), 'agora-canary-'));
      await writeFile(
        join(dir, 'agora.config.mjs'),
        `export const orch = { commandTarget: 'docker', commandImage: '${BUSYBOX}', queues: { default: { concurrency: 2 } } };\n`,
      );
      const w = await startAppWorld({ trusted: false, secrets: { CANARY }, config: await loadConfig({ file: join(dir, 'agora.config.mjs'), cwd: dir }) });
      try {
        const sha = await w.sim.push(w.fullName, { branch: 'canary', files: { 'plan.json': plan('canary') }, message: 'Canary plan' });
        await w.sim.openPullRequest(w.fullName, { head: 'canary', base: 'main', title: 'Canary' });
        await until('the canary run to end', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w, runBound(7, 2));
        await w.quiesce();
        const checks = await checkRuns(w, sha);
        expect(checks.get('agora / honest')).toMatchObject({ conclusion: 'success' });
        expect(checks.get('agora / says')).toMatchObject({ conclusion: 'success' });
        expect(checks.get('agora / fails-with-it')?.output.title).toBe('fails-with-it: failed — exited with code 4: giving up: ***');
        expect(checks.get('agora / writes-file')).toMatchObject({ conclusion: 'failure' });
        expect(checks.get('agora / writes-file')?.output.summary).toContain('secret CANARY');
        expect(checks.get('agora / base64')?.output.summary).toContain('***');

        const gh = w.sim.repoDir(w.fullName);
        const state = w.sim.sim.state;
        const leaks = [
          // GitHub never receives an unreferenced object: every object it holds is searched.
          ...findSecretInObjects(gh, 'all', CANARY),
          ...findSecret('the refs on GitHub', refsOf(gh), CANARY),
          ...[...state.checkRuns.values()].flatMap((c) => findSecret(`check run ${c.name}`, JSON.stringify(c), CANARY)),
          ...[...state.assets.values()].flatMap((a) => findSecret(`release asset ${a.name}`, a.data, CANARY)),
          ...[...state.releases.values()].flatMap((r) => findSecret(`release ${r.tagName}`, JSON.stringify({ ...r, assets: [] }), CANARY)),
          ...w.sim.webhookDeliveries.flatMap((d) => findSecret(`webhook ${d.event} ${d.guid}`, d.body, CANARY)),
          ...findSecret("the app's log", w.errors.join('\n'), CANARY),
        ];
        expect(leaks).toEqual([]);
        expect([...state.assets.values()].map((a) => a.name)).toContain(`canary-${sha.slice(0, 12)}.audit.json`);
        expect(git(gh, 'for-each-ref', '--format=%(refname)', 'refs/agora/patches/').trim().split('\n').sort()).toEqual(
          ['honest', 'says', 'base64', 'hex', 'wrapped'].map((i) => `refs/agora/patches/canary-${sha.slice(0, 12)}/${i}`).sort(),
        );
      } finally {
        await w.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
    scaled(runBound(7, 3)),
  );
});
