import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { RunRefs } from '../../src/runs/refs.js';
import { readEntries, readRun } from '../../src/runs/state-store.js';
import { eventually } from '../support/eventually.js';
import { agora, cleanupTempDirs, exited, git, makeRepo, startServe, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

const cmd = (id: string, run: string, locks: string[], extra: Record<string, unknown> = {}) => ({
  id,
  executor: 'command',
  inputs: { run },
  depends_on: [],
  resourceLocks: locks,
  ...extra,
});
/** A worker that emits the fragment committed at `frag/<name>.json`. */
const emits = (name: string) => `cp frag/${name}.json "$AGORA_EMIT/items.json"`;
const fragment = (items: unknown[]) => JSON.stringify({ items });

let repo: string;
const SECRET = 'emit-secret-9b2c7d41e0';

beforeAll(() => {
  repo = makeRepo({
    'agora.config.mjs': "export const orch = { secrets: ['EMIT_TOKEN'] };\n",
    'emit.plan.json': JSON.stringify({
      id: 'emit',
      queue: 'default',
      items: [cmd('fan', emits('two'), ['out/']), cmd('after', 'true', [], { depends_on: ['fan'] })],
    }),
    'crash-after.plan.json': JSON.stringify({ id: 'crash-after', queue: 'default', items: [cmd('fan', emits('two'), ['out/'])] }),
    'crash-before.plan.json': JSON.stringify({ id: 'crash-before', queue: 'default', items: [cmd('fan', emits('two'), ['out/'])] }),
    'frag/two.json': fragment([
      cmd('w1', 'mkdir -p out && echo one > out/1.txt', ['out/1.txt']),
      cmd('w2', 'cat out/1.txt > out/2.txt', ['out/2.txt'], { depends_on: ['w1'] }),
    ]),
    'limits.plan.json': JSON.stringify({
      id: 'limits',
      queue: 'default',
      max_hops: 1,
      max_items: 4,
      items: [cmd('h0', emits('hop1'), ['hop/']), cmd('b0', emits('three'), ['b/'])],
    }),
    'frag/hop1.json': fragment([cmd('h1', emits('hop2'), ['hop/'])]),
    'frag/hop2.json': fragment([cmd('h2', 'true', [])]),
    'frag/three.json': fragment([cmd('b1', 'true', []), cmd('b2', 'true', []), cmd('b3', 'true', [])]),
    'bad.plan.json': JSON.stringify({
      id: 'bad',
      queue: 'default',
      items: [
        cmd('invalid', emits('invalid'), ['x/']),
        cmd('dup', emits('dup'), ['y/']),
        cmd('wide', emits('wide'), ['z/']),
        // Puts its secret's value into an emitted item's inputs.
        {
          ...cmd('leaks', `sed "s/TOKEN/$EMIT_TOKEN/" frag/leak.json > "$AGORA_EMIT/items.json"`, []),
          inputs: { run: `sed "s/TOKEN/$EMIT_TOKEN/" frag/leak.json > "$AGORA_EMIT/items.json"`, secrets: ['EMIT_TOKEN'] },
        },
      ],
    }),
    'frag/invalid.json': fragment([cmd('n1', 'true', [], { depends_on: ['nowhere'] })]),
    'frag/dup.json': fragment([cmd('invalid', 'true', [])]),
    'frag/wide.json': fragment([cmd('w', 'true', ['src/'])]),
    'frag/leak.json': fragment([cmd('l', 'echo TOKEN', [])]),
  });
});

interface Status {
  status: string;
  items: Array<{ id: string; status: string; reason?: string; parent?: string; hops?: number }>;
}
async function status(runId: string): Promise<Status> {
  return JSON.parse((await agora(repo, ['orch', 'status', runId])).stdout) as Status;
}

describe('agora orch run with items emitted at run time', () => {
  it('an item emits two items: they join the run, run after it in their order, land, and the audit verifies; a forged emitted item does not', async () => {
    const r = await agora(repo, ['orch', 'run', 'emit.plan.json']);
    expect(r.stderr).toContain('run emit-1: done');
    expect(r.code).toBe(0);
    const s = await status('emit-1');
    expect(s.items.map((i) => [i.id, i.status])).toEqual([
      ['fan', 'done'],
      ['after', 'done'],
      ['w1', 'done'],
      ['w2', 'done'],
    ]);
    // Status names who added each emitted item, and how far from the plan it is.
    expect(s.items.map((i) => [i.id, i.parent ?? null, i.hops ?? 0])).toEqual([
      ['fan', null, 0],
      ['after', null, 0],
      ['w1', 'fan', 1],
      ['w2', 'fan', 1],
    ]);
    // The state commits holding emitted items are layout 3 (emitted.json beside plan.json); runs without stay 2.
    expect(JSON.parse(git(repo, 'show', 'refs/agora/runs/emit-1:run.json'))).toMatchObject({ layout: 3 });
    expect(JSON.parse(git(repo, 'show', 'refs/agora/runs/emit-1:emitted.json'))).toMatchObject([{ by: 'fan', attempt: 1, hops: 1 }]);
    const first = git(repo, 'rev-list', '--max-parents=0', 'refs/agora/runs/emit-1').trim();
    expect(JSON.parse(git(repo, 'show', `${first}:run.json`))).toMatchObject({ layout: 2 });
    // Both landed: w2 ran on the integration head that held w1's file.
    expect(git(repo, 'show', 'refs/agora/integration/emit-1:out/2.txt').trim()).toBe('one');
    // The emitter's own patch is empty (items.json is outside the workspace); the emit entry names both items.
    const entries = git(repo, 'log', '--format=%H', 'refs/agora/runs/emit-1')
      .trim()
      .split('\n')
      .flatMap((c) => git(repo, 'show', `${c}:entries.jsonl`).split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as { kind: string; itemId?: string; items?: Array<{ id: string; digest: string }>; hops?: number });
    const emit = entries.filter((e) => e.kind === 'emit');
    expect(emit.map((e) => [e.itemId, e.hops, e.items?.map((i) => i.id)])).toEqual([['fan', 1, ['w1', 'w2']]]);
    expect(emit[0]!.items![0]!.digest).toMatch(/^[0-9a-f]{64}$/);
    // The bundle is v4, names each emitted item's parent and hops, and verifies with the repository.
    const dir = tempDir('agora-emit-audit-');
    const out = join(dir, 'emit-1.audit.json');
    const audit = await agora(repo, ['orch', 'audit', 'emit-1', '--out', out]);
    expect(audit.stdout + audit.stderr).not.toContain('FAIL');
    expect(audit.code).toBe(0);
    const bundle = JSON.parse(readFileSync(out, 'utf8')) as { format: string; limits: unknown; items: Array<{ id: string; parent?: string; hops?: number }> };
    expect(bundle.format).toBe('agora.audit/v4');
    expect(bundle.limits).toEqual({ maxHops: 3, maxItems: 1000 });
    expect(bundle.items.map((i) => [i.id, i.parent ?? null, i.hops ?? 0])).toEqual([
      ['fan', null, 0],
      ['after', null, 0],
      ['w1', 'fan', 1],
      ['w2', 'fan', 1],
    ]);
    expect((await agora(repo, ['verify', out, '--repo', repo])).code).toBe(0);
    // Hand-tampered: an item added to the bundle as if fan had emitted it, with no emit entry adding it.
    const forged = join(dir, 'forged.audit.json');
    const item = {
      ...bundle.items[2]!,
      id: 'w3',
      parent: 'fan',
      hops: 1,
      status: 'pending',
      attempts: 0,
      resultRef: null,
      base: null,
      startedAt: null,
      finishedAt: null,
    };
    writeFileSync(forged, JSON.stringify({ ...bundle, items: [...bundle.items, item] }));
    const v = await agora(repo, ['verify', forged, '--repo', repo]);
    expect(v.code).not.toBe(0);
    expect(v.stdout + v.stderr).toContain('emit-missing');
    expect(v.stdout + v.stderr).toContain('item w3 says fan emitted it, but no emit entry of fan adds it');
  });

  it('an emitter past max_hops or past the item budget fails with the reason, and nothing of its fragment joins', async () => {
    const r = await agora(repo, ['orch', 'run', 'limits.plan.json']);
    expect(r.code).not.toBe(0);
    const s = await status('limits-1');
    const by = new Map(s.items.map((i) => [i.id, i]));
    expect([...by.keys()].sort()).toEqual(['b0', 'h0', 'h1']);
    expect(by.get('h0')!.status).toBe('done');
    expect(by.get('h1')!.status).toBe('failed');
    expect(by.get('h1')!.reason).toContain('$AGORA_EMIT/items.json of item h1 attempt 1');
    expect(by.get('h1')!.reason).toContain("over the plan's max_hops of 1");
    expect(by.get('b0')!.status).toBe('failed');
    expect(by.get('b0')!.reason).toMatch(/\$\.items adds 3 items to the run's \d, over its budget of 4 items \(max_items\)/);
  });

  it('an invalid fragment, an existing id or a lock beyond the emitter fails the emitter with the JSON path and the fix', async () => {
    const r = await agora(repo, ['orch', 'run', 'bad.plan.json'], { EMIT_TOKEN: SECRET });
    expect(r.code).not.toBe(0);
    const s = await status('bad-1');
    const by = new Map(s.items.map((i) => [i.id, i]));
    expect([...by.keys()]).toEqual(['invalid', 'dup', 'wide', 'leaks']);
    for (const i of by.values()) expect(i.status).toBe('failed');
    expect(by.get('invalid')!.reason).toContain('$AGORA_EMIT/items.json of item invalid attempt 1: 1 problem: $.items[0].depends_on[0]');
    expect(by.get('invalid')!.reason).toContain('nowhere');
    expect(by.get('dup')!.reason).toContain(`$.items[0].id: duplicate item id "invalid": the run's item "invalid" already has it`);
    expect(by.get('wide')!.reason).toContain('$.items[0].resourceLocks[0]: lock "src/" is not within the locks of the emitting item wide');
    expect(by.get('leaks')!.reason).toContain('$AGORA_EMIT/items.json of item leaks attempt 1 holds the value of secret EMIT_TOKEN, so nothing of it was kept');
    // Nowhere in the run's state chain.
    expect(git(repo, 'log', '-p', '--format=%H', 'refs/agora/runs/bad-1')).not.toContain(SECRET);
  });
});

describe('a crash around an emission', () => {
  /** `orch run` killed at `point`, then `serve` until the run has ended: what the run holds and logged. */
  async function crashAndResume(planFile: string, runId: string, point: string) {
    const crashed = await agora(repo, ['orch', 'run', planFile], { AGORA_CRASH_AT: point });
    expect(crashed.code).not.toBe(0);
    const serve = startServe(repo);
    try {
      const store = await openLocalStore(repo);
      const run = await eventually(
        `run ${runId} to end`,
        async () => {
          const r = await readRun(store, new RunRefs(), runId);
          return r && r.state.status !== 'running' ? r : undefined;
        },
        { within: 60_000 },
      );
      return { run, entries: await readEntries(store, run.head) };
    } finally {
      serve.kill('SIGTERM');
      await exited(serve);
    }
  }

  it('right after the state commit that records the emitter done: its items are there once, and run', async () => {
    // The second state commit of the run records fan done and adds w1 and w2 (and starts w1).
    const { run, entries } = await crashAndResume('crash-after.plan.json', 'crash-after-1', 'state-committed:2');
    expect(run.state.status).toBe('done');
    expect(run.plan.items.map((i) => i.id)).toEqual(['fan', 'w1', 'w2']);
    expect(run.state.emitted).toHaveLength(1);
    expect(entries.filter((e) => e.kind === 'emit').map((e) => [e.itemId, e.attempt])).toEqual([['fan', 1]]);
  });

  it('after the emitter finished but before its end was recorded: it runs again, and its items join once', async () => {
    // The first capture is fan's: the worker wrote items.json and succeeded, nothing is recorded yet.
    const { run, entries } = await crashAndResume('crash-before.plan.json', 'crash-before-1', 'workspace-captured:1');
    expect(run.state.status).toBe('done');
    expect(run.plan.items.map((i) => i.id)).toEqual(['fan', 'w1', 'w2']);
    expect(run.state.items.fan!.attempts).toBe(2);
    expect(entries.filter((e) => e.kind === 'emit').map((e) => [e.itemId, e.attempt])).toEqual([['fan', 2]]);
  });
});
