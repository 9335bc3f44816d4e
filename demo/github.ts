/**
 * `npm run demo:github`: the whole GitHub path on one machine. Starts the GitHub simulator
 * (@agora/github-sim) and `agora app`, opens a PR with the offload-fanout plan, prints each check run as it
 * changes, then the PR's commits, the release's assets, and as its last line the gate's verdict:
 * `agora / audit: <conclusion>`. Nothing leaves 127.0.0.1.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGitHubSim } from '@agora/github-sim';
import { generateSigningKey } from '../src/audit/keys.js';
import { errorStack } from '../src/errors.js';
import { runGit } from '../src/git/git-cli.js';
import { startAppServer } from '../src/github/main.js';
import { freePort } from '../test/support/free-port.js';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const example = join(root, 'examples', 'offload-fanout');
const out = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  process.env.LOG_LEVEL ??= 'warn'; // Probot's HTTP log reads it from the process environment
  const sim = await startGitHubSim({ strict: true });
  const work = await mkdtemp(join(tmpdir(), 'agora-demo-github-'));
  const port = await freePort();
  const gh = sim.createApp({ webhookUrl: `http://127.0.0.1:${port}/api/github/webhooks`, secret: 'demo-secret', name: 'agora' });
  const keyPath = join(work, 'agora-signing.key.pem');
  await writeFile(keyPath, generateSigningKey().privateKeyPem, { mode: 0o600 });
  const files: Record<string, string> = { 'README.md': '# demo\n' };
  for (const f of await readdir(join(example, 'fixture'))) files[`fixture/${f}`] = await readFile(join(example, 'fixture', f), 'utf8');
  const { fullName, id } = await sim.createRepo('octo', 'demo', files);
  const app = await startAppServer({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    APP_ID: String(gh.appId),
    PRIVATE_KEY: gh.privateKey,
    WEBHOOK_SECRET: 'demo-secret',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    AGORA_GITHUB_API_URL: sim.apiUrl,
    AGORA_CACHE_DIR: join(work, 'cache'),
    AGORA_CONFIG: join(example, 'agora.config.mjs'),
    AGORA_SIGNING_KEY: keyPath,
    // The example's workers are local processes: this operator trusts its own demo repository with them.
    AGORA_TRUSTED_REPOSITORY_IDS: String(id),
  });
  try {
    sim.installApp(gh.appId, fullName);
    out(`simulator ${sim.apiUrl}; agora app on :${port}; repository ${fullName}`);

    const seen = new Map<number, string>();
    const scan = () => {
      for (const [id, c] of sim.sim.state.checkRuns) {
        const line = `${c.name.padEnd(24)} ${c.headSha.slice(0, 7)} ${c.status}${c.conclusion ? ` → ${c.conclusion}` : ''}`;
        if (seen.get(id) !== line) {
          seen.set(id, line);
          out(`  check ${line}`);
        }
      }
    };
    const watch = setInterval(scan, 50);
    await sim.push(fullName, { branch: 'fanout', files: { 'plan.json': await readFile(join(example, 'plan.json'), 'utf8') }, message: 'Add the fan-out plan' });
    const pr = await sim.openPullRequest(fullName, { head: 'fanout', base: 'main', title: 'Fan out' });
    out(`opened PR #${pr.number}`);
    do {
      await sim.settle();
      await app.agora.idle();
      await sim.settle();
    } while (app.agora.busy);
    clearInterval(watch);
    scan();

    out('PR commits:');
    const log = await runGit(['log', '--format=  %h %s', 'main..fanout'], { gitDir: sim.repoDir(fullName) });
    out(log.trimEnd());
    for (const r of sim.sim.state.releases.values()) out(`release ${r.tagName}: ${r.assets.map((a) => a.name).join(', ')}`);
    const gate = [...sim.sim.state.checkRuns.values()].filter((c) => c.name === 'agora / audit').pop();
    out(`agora / audit: ${gate?.conclusion ?? 'missing'}`);
  } finally {
    await app.stop();
    await sim.close();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`demo:github failed: ${errorStack(e)}\n`);
  process.exitCode = 1;
});
