/**
 * `npm run sim`: starts the GitHub simulator in the foreground and prints one JSON line with its
 * URLs, a seeded demo app (id, private key path, webhook secret) and a demo repository.
 *
 *   npm run sim -- --webhook-url http://127.0.0.1:3000/api/github/webhooks --port 4000
 *   npm run sim -- --runner agora --runner gpu,big     # two self-hosted runners with those labels
 *   npm run sim -- --runners 4 --runner-labels agora   # four runners labelled agora
 *   npm run sim -- --runner agora --runner-pickup-delay 5000 --runner-step-delay 500   # slow runners
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { startGitHubSim } from './src/index.js';

const program = new Command('github-sim')
  .description('A stateful GitHub on 127.0.0.1 backed by real git repositories')
  .option('--port <port>', 'port to listen on (0 = any)', '0')
  .option('--webhook-url <url>', "the demo app's webhook URL", 'http://127.0.0.1:3000/api/github/webhooks')
  .option('--secret <secret>', "the demo app's webhook secret", 'development')
  .option('--repo <owner/name>', 'the demo repository', 'demo-org/demo')
  .option('--strict', 'fail requests whose responses break the OpenAPI contract', false)
  .option('--custom-ref-webhooks', 'emit push webhooks for refs outside refs/heads and refs/tags', false)
  .option('--seed <n>', 'fault-injection seed', '1')
  .option(
    '--runner <labels>',
    'register a self-hosted Actions runner with these comma-separated labels (repeatable)',
    (v: string, all: string[]) => [...all, v],
    [] as string[],
  )
  .option('--runners <n>', 'register n more self-hosted Actions runners, each with --runner-labels', '0')
  .option('--runner-labels <labels>', 'comma-separated labels of the --runners runners', '')
  .option('--runner-pickup-delay <ms>', 'fault: every runner takes this long to start a job it is given (the job stays queued)', '0')
  .option('--runner-step-delay <ms>', 'fault: every runner waits this long before each step', '0')
  .parse();

const opts = program.opts<{
  port: string;
  webhookUrl: string;
  secret: string;
  repo: string;
  strict: boolean;
  customRefWebhooks: boolean;
  seed: string;
  runner: string[];
  runners: string;
  runnerLabels: string;
  runnerPickupDelay: string;
  runnerStepDelay: string;
}>();
const [owner, name] = opts.repo.split('/');
if (!owner || !name) {
  process.stderr.write(`--repo must be owner/name, got '${opts.repo}'\n`);
  process.exit(2);
}

const sim = await startGitHubSim({ port: Number(opts.port), strict: opts.strict, webhookEventsForCustomRefs: opts.customRefWebhooks, seed: Number(opts.seed) });
const keyDir = await mkdtemp(join(tmpdir(), 'github-sim-key-'));
const app = sim.createApp({ webhookUrl: opts.webhookUrl, secret: opts.secret, name: 'agora-demo' });
const privateKeyPath = join(keyDir, `${app.slug}.private-key.pem`);
await writeFile(privateKeyPath, app.privateKey, { mode: 0o600 });
const repo = await sim.createRepo(owner, name, {
  'README.md': '# demo\n\nA repository served by the GitHub simulator.\n',
  'plan.json':
    JSON.stringify(
      { id: 'demo', queue: 'default', items: [{ id: 'hello', executor: 'command', inputs: { run: 'echo hello' }, depends_on: [], resourceLocks: [] }] },
      null,
      2,
    ) + '\n',
});
const installationId = sim.installApp(app.appId, repo.fullName);
const count = Number(opts.runners);
if (!Number.isInteger(count) || count < 0) {
  process.stderr.write(`--runners must be a whole number of runners, got '${opts.runners}'\n`);
  process.exit(2);
}
/** A whole, non-negative number of milliseconds from a flag, or exit 2 naming it. */
const millis = (flag: string, value: string): number => {
  const n = Number(value);
  if (Number.isInteger(n) && n >= 0) return n;
  process.stderr.write(`${flag} must be a whole number of milliseconds, got '${value}'\n`);
  process.exit(2);
};
const pickupDelayMs = millis('--runner-pickup-delay', opts.runnerPickupDelay);
const stepDelayMs = millis('--runner-step-delay', opts.runnerStepDelay);
const runnerLabels = [...opts.runner, ...Array.from({ length: count }, () => opts.runnerLabels)];
const runners = runnerLabels
  .map((labels) =>
    sim.addRunner({
      labels: labels
        .split(',')
        .map((l) => l.trim())
        .filter(Boolean),
      pickupDelayMs,
      stepDelayMs,
    }),
  )
  .map((r) => ({ id: r.id, name: r.name, labels: r.labels }));

process.stdout.write(
  JSON.stringify({
    apiUrl: sim.apiUrl,
    uploadsUrl: sim.uploadsUrl,
    gitUrl: sim.gitUrl,
    app: { id: app.appId, slug: app.slug, clientId: app.clientId, privateKeyPath, webhookSecret: app.webhookSecret, webhookUrl: opts.webhookUrl },
    installationId,
    repo: { ...repo, cloneUrl: `${sim.gitUrl}/${repo.fullName}.git` },
    runners,
  }) + '\n',
);

const stop = async (): Promise<void> => {
  await sim.close();
  await rm(keyDir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
