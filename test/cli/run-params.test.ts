import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson } from '../../src/log/canonical-json.js';
import { workDirFor } from '../../src/runs/work-dir.js';
import { agora, cleanupTempDirs, git, makeRepo, startServe } from '../support/repo.js';
import { eventually } from '../support/eventually.js';

afterAll(cleanupTempDirs);

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** The content of every object in the repository (loose and packed), decompressed. */
function allObjects(repo: string): string {
  return execFileSync('git', ['cat-file', '--batch-all-objects', '--batch'], { cwd: repo, maxBuffer: 256 * 1024 * 1024 }).toString('latin1');
}

interface Status {
  status: string;
  params?: Record<string, unknown>;
  items: Array<{ id: string; status: string; reason?: string }>;
}

describe('agora orch run --data / --data-file / --secret-data', () => {
  it('hands items the parameters in $AGORA_PARAMS, records them in the run, and keeps a secret one out of state, logs, audit and report', async () => {
    const canary = `canary-${process.pid}-${Date.now()}-s3cr3t`;
    // The item checks it got the real secret (and fails otherwise), writes the public parameters into its patch,
    // and prints the secret (which the log must redact).
    const run = [
      'test -f "$AGORA_PARAMS" || { echo "no params file" >&2; exit 2; }',
      // The plan holds only the canary's sha256, so that the canary itself is nowhere in the repository.
      `node -e 'const p=JSON.parse(require("fs").readFileSync(process.env.AGORA_PARAMS,"utf8")); if (require("crypto").createHash("sha256").update(p.token).digest("hex") !== process.argv[1]) process.exit(3); delete p.token; require("fs").writeFileSync("params-seen.json", JSON.stringify(p));' ${createHash('sha256').update(canary).digest('hex')}`,
      `node -e 'const p=JSON.parse(require("fs").readFileSync(process.env.AGORA_PARAMS,"utf8")); console.log("token is " + p.token)'`,
    ].join(' && ');
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'params',
        queue: 'default',
        items: [{ id: 'use', executor: 'command', inputs: { run }, depends_on: [], resourceLocks: ['params-seen.json'] }],
      }),
      'params.json': JSON.stringify({ region: 'eu', shards: 4, dry: false, title: 'from the file' }),
    });
    const ran = await agora(repo, [
      'orch',
      'run',
      'plan.json',
      '--data-file',
      'params.json',
      '--data',
      'title=<b>&"x"</b>',
      '--data',
      'empty=',
      '--secret-data',
      `token=${canary}`,
    ]);
    expect(ran.stderr).not.toContain(canary);
    expect(ran.code).toBe(0);

    const status = JSON.parse((await agora(repo, ['orch', 'status', 'params-1'])).stdout) as Status;
    expect(status.status).toBe('done');
    // --data wins over the file per key; file values keep their JSON types; the secret shows as ***.
    expect(status.params).toEqual({ dry: false, empty: '', region: 'eu', shards: 4, title: '<b>&"x"</b>', token: '***' });
    const patch = git(repo, 'rev-parse', 'refs/agora/patches/params-1/use').trim();
    expect(JSON.parse(git(repo, 'show', `${patch}:params-seen.json`))).toEqual({ dry: false, empty: '', region: 'eu', shards: 4, title: '<b>&"x"</b>' });

    const log = await agora(repo, ['orch', 'logs', 'params-1', 'use']);
    expect(log.stdout).toContain('token is ***');

    const audit = await agora(repo, ['orch', 'audit', 'params-1', '--out', 'params.audit.json']);
    expect(audit.code).toBe(0);
    const bundle = readFileSync(join(repo, 'params.audit.json'), 'utf8');
    // The bundle (v5) records the parameters as the run does, the secret as ***, with their digest; it verifies against the repository.
    const recorded = { dry: false, empty: '', region: 'eu', shards: 4, title: '<b>&"x"</b>', token: '***' };
    expect(JSON.parse(bundle)).toMatchObject({
      format: 'agora.audit/v5',
      params: { values: recorded, digest: createHash('sha256').update(canonicalJson(recorded)).digest('hex') },
    });
    const verified = await agora(repo, ['verify', 'params.audit.json', '--repo', '.']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const report = await agora(repo, ['orch', 'report', 'params-1', '--out', 'params.html']);
    expect(report.code).toBe(0);
    const page = readFileSync(join(repo, 'params.html'), 'utf8');
    // The report lists the parameters, escaped.
    expect(page).toContain('<section id="parameters">');
    expect(page).toContain('&lt;b&gt;&amp;');
    expect(page).not.toContain('<b>&"x"</b>');
    expect(page).toContain('&quot;***&quot;');

    // The canary is nowhere Agora stores text: no git object, no log under .git/agora, not the bundle or the report.
    expect(allObjects(repo)).not.toContain(canary);
    for (const file of filesUnder(join(repo, '.git', 'agora', 'logs'))) expect(readFileSync(file, 'utf8')).not.toContain(canary);
    expect(bundle).not.toContain(canary);
    expect(page).not.toContain(canary);
    // The attempt's $AGORA_PARAMS file held the real value; it is removed when the attempt ends.
    const attemptFiles = join(await workDirFor(join(repo, '.git')), 'params');
    const left = existsSync(attemptFiles) ? filesUnder(attemptFiles) : [];
    expect(left.filter((f) => readFileSync(f, 'utf8').includes(canary))).toEqual([]);
    expect(log.stdout).not.toContain(canary);
  });

  it('retry --failed reruns the failed item with the same parameters (the secret one too), and the extended run verifies', async () => {
    const secret = `retry-secret-${process.pid}-${Date.now()}`;
    const marker = `/tmp/agora-params-retry-${process.pid}-${Date.now()}`;
    // Fails the first time; then copies what it was given (the secret as its sha256) into its patch.
    const run = [
      `test -f ${marker} || { touch ${marker}; exit 1; }`,
      `node -e 'const fs=require("fs"); const p=JSON.parse(fs.readFileSync(process.env.AGORA_PARAMS,"utf8")); p.token=require("crypto").createHash("sha256").update(p.token).digest("hex"); fs.writeFileSync("seen.json", JSON.stringify(p))'`,
    ].join(' && ');
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'again',
        queue: 'default',
        items: [{ id: 'a', executor: 'command', inputs: { run }, depends_on: [], resourceLocks: ['seen.json'] }],
      }),
    });
    expect((await agora(repo, ['orch', 'run', 'plan.json', '--data', 'region=eu', '--secret-data', `token=${secret}`])).code).toBe(1);
    const retry = await agora(repo, ['orch', 'retry', 'again-1', '--failed']);
    expect(retry.code, retry.stderr).toBe(0);
    const serve = startServe(repo);
    try {
      const done = await eventually('the retried run to finish', async () => {
        const st = JSON.parse((await agora(repo, ['orch', 'status', 'again-1'])).stdout) as Status;
        return st.status !== 'running' ? st : undefined;
      });
      expect(done.status).toBe('done');
      expect(done.params).toEqual({ region: 'eu', token: '***' });
    } finally {
      serve.kill('SIGTERM');
    }
    const patch = git(repo, 'rev-parse', 'refs/agora/patches/again-1/a').trim();
    expect(JSON.parse(git(repo, 'show', `${patch}:seen.json`))).toEqual({ region: 'eu', token: createHash('sha256').update(secret).digest('hex') });
    const audit = await agora(repo, ['orch', 'audit', 'again-1', '--out', 'again.audit.json']);
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(repo, 'again.audit.json'), 'utf8')).params.values).toEqual({ region: 'eu', token: '***' });
    expect((await agora(repo, ['verify', 'again.audit.json', '--repo', '.'])).code).toBe(0);
  }, 600_000);

  it('refuses bad parameters with a typed error naming the input, and starts nothing', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'bad',
        queue: 'default',
        items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: ['a.txt'] }],
      }),
      'array.json': '[1, 2]',
      'nested.json': JSON.stringify({ db: { host: 'x' } }),
      'broken.json': '{ "a": ',
      'badkey.json': JSON.stringify({ '../x': 'y' }),
    });
    // A bad --data or --secret-data is bad usage (exit 2, docs/cli.md); a bad data file is a user error (exit 1).
    const cases: Array<[string[], string, number]> = [
      [['--data', 'novalue'], '--data "novalue" is not key=value', 2],
      [['--data', '=v'], '--data "=v" is not key=value', 2],
      [['--data', '../etc=v'], 'key "../etc" is not allowed', 2],
      [['--data', 'a=1', '--data', 'a=2'], 'parameter a is given twice', 2],
      [['--data', 'a=1', '--secret-data', 'a=longenough'], 'parameter a is given twice', 2],
      [['--secret-data', 'tok=short'], 'too short to redact', 2],
      [['--data-file', 'missing.json'], '--data-file missing.json: no such file', 1],
      [['--data-file', 'broken.json'], '--data-file broken.json: is not JSON', 1],
      [['--data-file', 'array.json'], '--data-file array.json: $: is an array, not an object', 1],
      [['--data-file', 'nested.json'], '--data-file nested.json: $.db: is an object; a parameter is a string, number or boolean', 1],
      [['--data-file', 'badkey.json'], '--data-file badkey.json: $.../x: key "../x" is not allowed', 1],
    ];
    for (const [args, message, code] of cases) {
      const r = await agora(repo, ['orch', 'run', 'plan.json', ...args]);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toContain(message);
    }
    // submit takes the same path.
    for (const [args, message, code] of [cases[0]!, cases[8]!]) {
      const s = await agora(repo, ['orch', 'submit', 'plan.json', ...args]);
      expect(s.code, args.join(' ')).toBe(code);
      expect(s.stderr, args.join(' ')).toContain(message);
    }
    // Nothing half-started: no submission, no run, no stored secret.
    expect(git(repo, 'for-each-ref', 'refs/agora').trim()).toBe('');
    expect(() => readdirSync(join(repo, '.git', 'agora', 'params'))).toThrow();
  }, 600_000);

  it('a submitted run keeps its parameters for serve; a forged params.json in the inbox is rejected', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'sub',
        queue: 'default',
        items: [{ id: 'a', executor: 'command', inputs: { run: 'cp "$AGORA_PARAMS" seen.json' }, depends_on: [], resourceLocks: ['seen.json'] }],
      }),
    });
    const sub = await agora(repo, ['orch', 'submit', 'plan.json', '--data', 'who=submit']);
    expect(sub.code).toBe(0);
    expect(sub.stdout.trim()).toBe('sub-1');
    expect(JSON.parse(git(repo, 'show', 'refs/agora/inbox/sub-1:params.json'))).toEqual({ values: { who: 'submit' } });
    writeFileSync(join(repo, 'forged.json'), JSON.stringify({ values: { who: { nested: true } } }));
    const blob = git(repo, 'hash-object', '-w', 'forged.json').trim();
    const planBlob = git(repo, 'rev-parse', 'refs/agora/inbox/sub-1:plan.json').trim();
    const tree = execFileSync('git', ['mktree'], { cwd: repo, input: `100644 blob ${blob}\tparams.json\n100644 blob ${planBlob}\tplan.json\n` })
      .toString()
      .trim();
    const head = git(repo, 'rev-parse', 'HEAD').trim();
    const forged = git(repo, 'commit-tree', tree, '-p', head, '-m', 'forged').trim();
    git(repo, 'update-ref', 'refs/agora/inbox/sub-2', forged);
    const serve = startServe(repo);
    try {
      const done = await eventually('the submitted run to finish', async () => {
        const r = await agora(repo, ['orch', 'status', 'sub-1']);
        const st = r.code === 0 ? (JSON.parse(r.stdout) as Status) : undefined;
        return st && ['done', 'failed', 'cancelled'].includes(st.status) ? st : undefined;
      });
      expect(done.status).toBe('done');
      expect(done.params).toEqual({ who: 'submit' });
      const seen = git(repo, 'rev-parse', 'refs/agora/patches/sub-1/a').trim();
      expect(JSON.parse(git(repo, 'show', `${seen}:seen.json`))).toEqual({ who: 'submit' });
      const rejected = await eventually('the forged submission to be rejected', () => {
        const r = execFileSync('git', ['for-each-ref', '--format=%(refname)', 'refs/agora/rejected/sub-2'], { cwd: repo }).toString().trim();
        return r !== '' ? r : undefined;
      });
      expect(git(repo, 'show', `${rejected}:errors.json`)).toContain('params.json values $.who: is an object');
      expect(git(repo, 'for-each-ref', 'refs/agora/runs/sub-2').trim()).toBe('');
    } finally {
      serve.kill('SIGTERM');
    }
  }, 600_000);
});
