import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/log/canonical-json.js';
import { GENESIS_HASH } from '../../src/log/entry.js';
import { workDirFor } from '../../src/runs/work-dir.js';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';
import { isGone } from '../support/process.js';

afterAll(cleanupTempDirs);

interface Status {
  runId: string;
  status: string;
  reason?: string;
  base: string;
  integrationHead: string;
  items: Array<{ id: string; status: string; reason?: string; attempts: number; resultRef?: string }>;
}

async function status(repo: string, runId: string): Promise<Status> {
  const r = await agora(repo, ['orch', 'status', runId]);
  return JSON.parse(r.stdout) as Status;
}

function item(s: Status, id: string) {
  const found = s.items.find((i) => i.id === id);
  if (!found) throw new Error(`no item ${id}`);
  return found;
}

describe('agora orch run (local mode)', () => {
  it('runs the offload-fanout example end to end; every result lives in git', async () => {
    const repo = makeRepo({}, 'offload-fanout');
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.stderr).toContain('run fanout-1-1: done');
    expect(r.code).toBe(0);
    const s = await status(repo, 'fanout-1-1');
    expect(s.status).toBe('done');
    expect(s.items.map((i) => [i.id, i.status, i.attempts])).toEqual([
      ['edit-alpha', 'done', 1],
      ['edit-beta', 'done', 1],
      ['edit-shared', 'done', 1],
      ['verify', 'done', 1],
    ]);

    // Each patch commit changes only its own file, on top of the base it ran on.
    for (const [id, file] of [
      ['edit-alpha', 'fixture/alpha.ts'],
      ['edit-beta', 'fixture/beta.ts'],
      ['edit-shared', 'fixture/shared.ts'],
    ] as const) {
      const patch = item(s, id).resultRef!.replace(/^git:/, '');
      expect(git(repo, 'rev-parse', `refs/agora/patches/fanout-1-1/${id}`).trim()).toBe(patch);
      expect(git(repo, 'diff', '--name-only', `${patch}^`, patch).trim()).toBe(file);
      expect(git(repo, 'log', '-1', '--format=%(trailers:key=Agora-Item,valueonly)', patch).trim()).toBe(id);
    }
    // verify changed nothing: its patch is empty.
    const verifyPatch = item(s, 'verify').resultRef!.replace(/^git:/, '');
    expect(git(repo, 'diff', '--name-only', `${verifyPatch}^`, verifyPatch).trim()).toBe('');

    // Integration: base + one commit per item that changed something, with trailers, and the edits in the tree.
    const integration = git(repo, 'rev-parse', 'refs/agora/integration/fanout-1-1').trim();
    expect(integration).toBe(s.integrationHead);
    const commits = git(repo, 'log', '--format=%(trailers:key=Agora-Item,valueonly)', `${s.base}..${integration}`).split('\n').filter(Boolean).sort();
    expect(commits).toEqual(['edit-alpha', 'edit-beta', 'edit-shared']);
    expect(git(repo, 'show', `${integration}:fixture/beta.ts`)).toContain('let best');
    expect(git(repo, 'show', `${integration}:fixture/alpha.ts`)).toContain('const words');
    // The working tree was not touched without --apply.
    expect(readFileSync(join(repo, 'fixture/alpha.ts'), 'utf8')).toContain('var words');

    // The state chain is well-formed git, and its audit entries form an unbroken hash chain.
    git(repo, 'fsck', '--strict', '--no-dangling');
    const chain = git(repo, 'rev-list', '--reverse', 'refs/agora/runs/fanout-1-1').trim().split('\n');
    let prev = GENESIS_HASH;
    let seq = 0;
    for (const commit of chain) {
      for (const line of git(repo, 'show', `${commit}:entries.jsonl`).split('\n').filter(Boolean)) {
        const { hash, ...body } = JSON.parse(line) as { hash: string; prevHash: string; seq: number };
        expect(body.prevHash).toBe(prev);
        expect(body.seq).toBe(seq++);
        expect(hash).toBe(createHash('sha256').update(canonicalJson(body)).update(prev).digest('hex'));
        prev = hash;
      }
    }
    expect(seq).toBeGreaterThanOrEqual(1 + 4 * 3 + 1); // accepted + pending→ready→running→done per item + terminal
    // The finished run's Merkle root is anchored in the repository without being asked.
    const anchor = JSON.parse(git(repo, 'show', 'refs/agora/anchors/fanout-1-1:anchor.json')) as { root: string; entries: number };
    expect(anchor.entries).toBe(seq);
    expect(anchor.root).toMatch(/^[0-9a-f]{64}$/);
    const verified = await agora(repo, ['orch', 'audit', 'fanout-1-1', '--out', join(repo, '.git', 'fanout.audit.json')]);
    expect(verified.code).toBe(0);
    expect(JSON.parse(readFileSync(join(repo, '.git', 'fanout.audit.json'), 'utf8')).root).toBe(anchor.root);
    // The attempt logs are kept in the state tree, and readable with `agora orch logs`.
    const logs = await agora(repo, ['orch', 'logs', 'fanout-1-1', 'edit-beta']);
    expect(logs.stdout).toContain('var best -> let best');
    // No workspace is left behind (the pool lives in the repository's work dir, outside it).
    const work = join(await workDirFor(join(repo, '.git')), 'pool');
    expect(existsSync(work) ? readdirSync(work) : []).toEqual([]);
  });

  it('--apply fast-forwards the current branch onto the integration head, and its summary does not suggest --apply again', async () => {
    const repo = makeRepo({}, 'map-reduce');
    const r = await agora(repo, ['orch', 'run', 'plan.json', '--apply']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('  integration: git log --stat');
    expect(r.stderr).toMatch(/\n {2}applied: HEAD is now [0-9a-f]{12}\n/);
    expect(r.stderr).not.toContain('--apply');
    expect(r.stderr).not.toContain('git merge --ff-only');
    const totals = JSON.parse(readFileSync(join(repo, 'totals.json'), 'utf8')) as Record<string, number>;
    expect(totals.the).toBe(5);
    expect(git(repo, 'rev-parse', 'HEAD').trim()).toBe(git(repo, 'rev-parse', 'refs/agora/integration/wordcount-1').trim());
    expect(git(repo, 'status', '--porcelain').trim()).toBe('');
  });

  it('fails an item with its exit code and last log line, skips its dependents, exits non-zero', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'p',
        queue: 'default',
        items: [
          { id: 'bad', executor: 'command', inputs: { run: 'echo working; echo "no such table: users" >&2; exit 3' }, depends_on: [], resourceLocks: [] },
          { id: 'after', executor: 'command', inputs: { run: 'true' }, depends_on: ['bad'], resourceLocks: [] },
          { id: 'last', executor: 'command', inputs: { run: 'true' }, depends_on: ['after'], resourceLocks: [] },
          { id: 'fine', executor: 'command', inputs: { run: 'echo ok > ok.txt' }, depends_on: [], resourceLocks: ['ok.txt'] },
        ],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('run p-1: failed — 1 of 4 items failed (bad), 2 skipped');
    const s = await status(repo, 'p-1');
    expect(item(s, 'bad')).toMatchObject({ status: 'failed', reason: 'exited with code 3: no such table: users' });
    expect(item(s, 'after')).toMatchObject({ status: 'skipped', reason: 'upstream bad failed' });
    expect(item(s, 'last')).toMatchObject({ status: 'skipped', reason: 'upstream bad failed' });
    expect(item(s, 'fine').status).toBe('done');
  });

  it('runs a plan whose id is 100 characters long, though its run id is then longer than an id', async () => {
    const id = `p${'x'.repeat(99)}`;
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id,
        queue: 'default',
        items: [{ id: 'one', executor: 'command', inputs: { run: 'echo ok > ok.txt' }, depends_on: [], resourceLocks: ['ok.txt'] }],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.stderr).toContain(`run ${id}-1: done`);
    expect(r.code).toBe(0);
    expect((await status(repo, `${id}-1`)).status).toBe('done');
    const gc = await agora(repo, ['orch', 'gc', '--older-than', '0s', '--discard-bundles', '--dry-run']);
    expect(gc.code).toBe(0);
    expect(gc.stdout).toContain(`${id}-1`);
    expect(gc.stdout).not.toContain('left alone');
  });

  it('confines patches to their write scope: fails with the offending paths, or discards them when asked', async () => {
    const items = (scope?: string) => [
      {
        id: 'sneaky',
        executor: 'command',
        inputs: { run: 'echo a > src/a.ts; echo b > other.txt; mkdir -p .github/workflows; echo x > .github/workflows/ci.yml' },
        depends_on: [],
        resourceLocks: ['src/', '.github/'],
        ...(scope ? { scope } : {}),
      },
    ];
    const repo = makeRepo({
      'src/a.ts': 'old\n',
      'fail.json': JSON.stringify({ id: 'f', queue: 'default', items: items() }),
      'discard.json': JSON.stringify({ id: 'd', queue: 'default', items: items('discard') }),
    });
    const failed = await agora(repo, ['orch', 'run', 'fail.json']);
    expect(failed.code).toBe(1);
    const reason = item(await status(repo, 'f-1'), 'sneaky').reason!;
    expect(reason).toContain('wrote outside its write scope (src/, .github/)');
    expect(reason).toContain('.github/workflows/ci.yml');
    expect(reason).toContain('other.txt');
    expect(reason).not.toContain('src/a.ts');

    const discarded = await agora(repo, ['orch', 'run', 'discard.json']);
    expect(discarded.code).toBe(0);
    const head = git(repo, 'rev-parse', 'refs/agora/integration/d-1').trim();
    expect(git(repo, 'show', `${head}:src/a.ts`)).toBe('a\n');
    expect(git(repo, 'ls-tree', '-r', '--name-only', head).split('\n')).not.toContain('other.txt');
  });

  // A worker controls its files' times: a same-size change outside its scope whose mtime it puts back
  // (to the nanosecond) is still seen, fails the item, and does not reach the next item in the pooled
  // workspace.
  it('fails an item that writes outside its scope and restores the file’s size and mtime', async () => {
    const hide = 'm=$(stat -c %y keep.txt); printf new > keep.txt; touch -d "$m" keep.txt';
    const repo = makeRepo({
      'src/a.ts': 'old\n',
      'keep.txt': 'old',
      'agora.config.mjs': 'export const orch = { queues: { default: { concurrency: 1 } } };\n', // one after the other, in one workspace
      'plan.json': JSON.stringify({
        id: 'h',
        queue: 'default',
        items: [
          { id: 'hide', executor: 'command', inputs: { run: `echo a > src/a.ts; ${hide}` }, depends_on: [], resourceLocks: ['src/'] },
          { id: 'next', executor: 'command', inputs: { run: 'test "$(cat keep.txt)" = old' }, depends_on: [], resourceLocks: [] },
        ],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.code).toBe(1);
    const s = await status(repo, 'h-1');
    expect(item(s, 'hide').status).toBe('failed');
    expect(item(s, 'hide').reason).toContain('wrote outside its write scope (src/): keep.txt');
    expect(item(s, 'next').status).toBe('done');
  });

  it('times out a hung worker, kills it and everything it started, and says so', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'slow',
        queue: 'default',
        items: [
          {
            id: 'hang',
            executor: 'command',
            inputs: { run: 'sleep 300 & echo $! > /tmp/agora-hang-child-$AGORA_RUN; sleep 300' },
            depends_on: [],
            resourceLocks: [],
            timeoutSeconds: 1,
          },
        ],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']); // returns at all: the 5-minute sleeps were stopped
    expect(r.code).toBe(1);
    expect(item(await status(repo, 'slow-1'), 'hang')).toMatchObject({ status: 'failed', reason: 'timed out after 1s' });
    const childPid = Number(readFileSync('/tmp/agora-hang-child-slow-1', 'utf8'));
    expect(isGone(childPid)).toBe(true);
  });

  it('keeps declared secrets out of logs and passes no undeclared environment', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 's',
        queue: 'default',
        items: [
          {
            id: 'use',
            executor: 'command',
            inputs: { run: 'echo "token=$API_TOKEN"; echo "leak=${UNDECLARED:-none}"', secrets: ['API_TOKEN'] },
            depends_on: [],
            resourceLocks: [],
          },
        ],
      }),
      'agora.config.mjs': "export const orch = { secrets: ['API_TOKEN'] };\n",
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json'], { API_TOKEN: 'tok-3f9a8b7c', UNDECLARED: 'visible' });
    expect(r.code).toBe(0);
    const log = (await agora(repo, ['orch', 'logs', 's-1', 'use'])).stdout;
    expect(log).toContain('token=***');
    expect(log).toContain('leak=none');
    expect(git(repo, 'log', '-p', 'refs/agora/runs/s-1')).not.toContain('tok-3f9a8b7c');
  });

  it("refuses a plan's secret the config does not offer, though Agora's environment has it", async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'o',
        queue: 'default',
        items: [
          { id: 'asks', executor: 'command', inputs: { run: 'echo "got=$HOST_TOKEN"', secrets: ['HOST_TOKEN'] }, depends_on: [], resourceLocks: [] },
          { id: 'offered', executor: 'command', inputs: { run: 'echo "got=$API_TOKEN"', secrets: ['API_TOKEN'] }, depends_on: [], resourceLocks: [] },
          // A subagent's secret is the subagent's: Agora's environment holds it for that subagent alone.
          { id: 'borrows', executor: 'command', inputs: { run: 'echo "got=$DEPLOY_TOKEN"', secrets: ['DEPLOY_TOKEN'] }, depends_on: [], resourceLocks: [] },
        ],
      }),
      'agora.config.mjs': "export const orch = { secrets: ['API_TOKEN'], subagents: { deploy: { command: ['true'], secrets: ['DEPLOY_TOKEN'] } } };\n",
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json'], { HOST_TOKEN: 'host-7c1e5a90d2', API_TOKEN: 'tok-3f9a8b7c', DEPLOY_TOKEN: 'deploy-9d1f0b2e' });
    expect(r.code).toBe(1);
    const asks = item(await status(repo, 'o-1'), 'asks');
    expect(asks.status).toBe('failed');
    expect(asks.reason).toContain('needs secret HOST_TOKEN, which agora.config.mjs does not offer to plans');
    expect(asks.reason).toContain('list it in orch.secrets of agora.config.mjs');
    expect(item(await status(repo, 'o-1'), 'offered').status).toBe('done');
    expect((await agora(repo, ['orch', 'logs', 'o-1', 'offered'])).stdout).toContain('got=***');
    const borrows = item(await status(repo, 'o-1'), 'borrows');
    expect(borrows.status).toBe('failed');
    expect(borrows.reason).toContain('needs secret DEPLOY_TOKEN, which agora.config.mjs does not offer to plans');
    expect(git(repo, 'log', '-p', '--all')).not.toContain('host-7c1e5a90d2');
  });

  it("never gives a plan's item an agent's API key, even where the config offers it nothing else", async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'k',
        queue: 'default',
        items: [
          {
            id: 'steal',
            executor: 'command',
            inputs: { run: 'echo "$ANTHROPIC_API_KEY" | rev', secrets: ['ANTHROPIC_API_KEY'] },
            depends_on: [],
            resourceLocks: [],
          },
        ],
      }),
      'agora.config.mjs': "export const orch = { subagents: { writer: { agent: { prompt: 'writer.md', model: 'claude-sonnet-4-5' } } } };\n",
      'writer.md': 'Write.\n',
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json'], { ANTHROPIC_API_KEY: 'sk-ant-canary-51f0c9' });
    expect(r.code).toBe(1);
    const steal = item(await status(repo, 'k-1'), 'steal');
    expect(steal.status).toBe('failed');
    expect(steal.reason).toContain('declares secret ANTHROPIC_API_KEY, the API key of an agent');
    expect(git(repo, 'log', '-p', '--all')).not.toContain('9c0f15-yranac-tna-ks'); // reversed, past any redaction
  });

  it('fails an item whose declared secret is missing, naming it', async () => {
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'm',
        queue: 'default',
        items: [{ id: 'use', executor: 'command', inputs: { run: 'true', secrets: ['MISSING_SECRET_X'] }, depends_on: [], resourceLocks: [] }],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.code).toBe(1);
    expect(item(await status(repo, 'm-1'), 'use').reason).toContain('MISSING_SECRET_X');
  });

  it('hands an item its upstream products through needs: a patch summary and an output file', async () => {
    const consume =
      "node -e \"const n=JSON.parse(process.env.AGORA_NEEDS); const fs=require('fs'); " +
      "fs.writeFileSync('got.txt', fs.readFileSync(n.report.file,'utf8') + fs.readFileSync(n.edit.file,'utf8') + n.edit.from + ' ' + n.report.path + '\\n')\"";
    const repo = makeRepo({
      'src/a.ts': 'a\n',
      'plan.json': JSON.stringify({
        id: 'n',
        queue: 'default',
        items: [
          { id: 'edit', executor: 'command', inputs: { run: 'echo b > src/a.ts' }, depends_on: [], resourceLocks: ['src/'] },
          { id: 'lint', executor: 'command', inputs: { run: 'echo clean > report.json' }, depends_on: [], resourceLocks: ['report.json'] },
          {
            id: 'use',
            executor: 'command',
            inputs: { run: consume },
            depends_on: [],
            resourceLocks: ['got.txt'],
            needs: { edit: { from: 'edit', select: { kind: 'patch' } }, report: { from: 'lint', select: { kind: 'output', path: 'report.json' } } },
          },
        ],
      }),
    });
    const r = await agora(repo, ['orch', 'run', 'plan.json']);
    expect(r.code).toBe(0);
    const head = git(repo, 'rev-parse', 'refs/agora/integration/n-1').trim();
    const blob = git(repo, 'rev-parse', `${head}:src/a.ts`).trim();
    expect(git(repo, 'show', `${head}:got.txt`)).toBe(`clean\nsrc/a.ts\tM\t${blob}\nedit report.json\n`);
  });
});
