import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { BUSYBOX, DEFAULT_ENGINE, connectEngine } from '../docker/engine.js';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';
import { scaled } from '../support/eventually.js';
import { findSecretInObjects } from '../support/secret-search.js';

afterAll(cleanupTempDirs);
const docker: Docker | undefined = await connectEngine();

/**
 * A worker that writes its secret into a file of its workspace, in any form the redactor knows, fails its
 * item with a reason naming the secret (never its value), and no ref, state or bundle keeps the file.
 */

const SECRET = 'pat-7Hq2?xW9>kLm4Rt8';

/** Each writes the secret into out/ (its write scope) in one form; `honest` writes no secret. */
const WRITERS: Record<string, string> = {
  plain: `printf 'token: %s\\n' "$API_TOKEN" > out/plain.txt`,
  base64: `printf 'token=%s\\n' "$API_TOKEN" | base64 > out/b64.txt`,
  hex: `printf '%s' "$API_TOKEN" | od -An -tx1 | tr -d ' \\n' > out/hex.txt`,
  'url-encoded': `printf 'https://x.invalid/?t=%s\\n' "$API_TOKEN" | sed 's/?/%3F/2; s/>/%3E/' > out/url.txt`,
  wrapped: `printf '%s' "$API_TOKEN" | fold -w 5 > out/wrapped.txt`,
  symlink: `ln -s "/$API_TOKEN" out/link`,
  'file-name': `touch "out/$API_TOKEN.txt"`,
  honest: `echo 'no secret here' > out/honest.txt`,
};

function plan(id: string, target?: { target: 'docker'; image: string }): string {
  const items = Object.entries(WRITERS).map(([itemId, run]) => ({
    id: itemId,
    executor: 'command',
    inputs: { run: `mkdir -p out && ${run}`, secrets: ['API_TOKEN'], ...target },
    depends_on: [],
    resourceLocks: ['out/'],
  }));
  return JSON.stringify({ id, queue: 'default', items });
}

interface Status {
  items: Array<{ id: string; status: string; reason?: string; resultRef?: string }>;
}

async function runAndCheck(runId: string, target?: { target: 'docker'; image: string }, env: Record<string, string> = {}): Promise<void> {
  const repo = makeRepo({ 'plan.json': plan(runId, target), 'agora.config.mjs': "export const orch = { secrets: ['API_TOKEN'] };\n" });
  const run = await agora(repo, ['orch', 'run', 'plan.json'], { ...env, API_TOKEN: SECRET }, scaled(180_000));
  expect(run.code).toBe(1);
  const status = JSON.parse((await agora(repo, ['orch', 'status', `${runId}-1`], env)).stdout) as Status;
  const byId = new Map(status.items.map((i) => [i.id, i]));
  expect(byId.get('honest')?.status).toBe('done');
  for (const id of Object.keys(WRITERS).filter((w) => w !== 'honest')) {
    expect({ id, status: byId.get(id)?.status }).toEqual({ id, status: 'failed' });
    expect(byId.get(id)?.reason).toContain('wrote the value of secret API_TOKEN into its workspace');
    expect(byId.get(id)?.reason).not.toContain(SECRET);
  }
  // Only the honest item's patch is kept; nothing any ref reaches holds the secret in any form.
  expect(git(repo, 'for-each-ref', '--format=%(refname)', `refs/agora/patches/${runId}-1/`).trim()).toBe(`refs/agora/patches/${runId}-1/honest`);
  await agora(repo, ['orch', 'audit', `${runId}-1`, '--out', join(repo, '.git', 'audit.json')], env);
  expect(findSecretInObjects(join(repo, '.git'), 'referenced', SECRET)).toEqual([]);
}

describe('a secret written into a file of the workspace', () => {
  it('fails its item on the local target, naming the secret, and no ref keeps the file', async () => {
    await runAndCheck('leak');
  });

  it.skipIf(!docker)('fails its item on the docker target too', async () => {
    await runAndCheck('leakdock', { target: 'docker', image: BUSYBOX }, { DOCKER_HOST: process.env.DOCKER_HOST ?? DEFAULT_ENGINE });
  });
});
