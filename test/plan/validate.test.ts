import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidInputError, type Problem } from '../../src/errors.js';
import { parsePlanText } from '../../src/plan/parse.js';
import { formatJsonPath } from '../../src/json/path.js';
import { assertValidPlan, validatePlan, type ValidationContext } from '../../src/plan/validate.js';

const seedText = readFileSync(new URL('./fixtures/offload-fanout.plan.json', import.meta.url), 'utf8');
const seed = () => parsePlanText(seedText, 'examples/offload-fanout/plan.json') as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests edit the seed plan freely

const ctx: ValidationContext = {
  subagents: {
    'code-edit': {
      inputSchema: {
        type: 'object',
        required: ['file'],
        properties: { file: { type: 'string', pattern: '\\.ts$' }, mode: { enum: ['fast', 'careful'] } },
        additionalProperties: false,
      },
    },
    verify: {},
  },
  shapes: {
    review: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      required: ['subagent', 'paths'],
      properties: { paths: { type: 'array', items: { type: 'string' }, minItems: 1 } },
    },
  },
};

function problemsOf(raw: unknown, context: ValidationContext = ctx): Problem[] {
  const result = validatePlan(raw, context);
  if (result.ok) throw new Error('expected the plan to be invalid');
  return result.problems;
}

/** The one problem at `path` (fails when there is none or several). */
function at(problems: Problem[], path: string): string {
  const found = problems.filter((p) => p.path === path);
  expect(
    found.map((p) => p.path),
    JSON.stringify(problems, null, 1),
  ).toEqual([path]);
  return found[0]!.message;
}

const cmd = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  executor: 'command',
  inputs: { run: 'true' },
  depends_on: [],
  resourceLocks: [],
  ...extra,
});
const plan = (items: unknown[], extra: Record<string, unknown> = {}) => ({ id: 'run-1', queue: 'default', items, ...extra });

describe('the seed plan', () => {
  it('validates unchanged', () => {
    const raw = seed();
    const before = JSON.stringify(raw);
    const result = validatePlan(raw, ctx);
    expect(result).toEqual({ ok: true, plan: raw });
    expect(JSON.stringify(raw)).toBe(before);
    expect(assertValidPlan(raw, ctx, 'plan.json').items.map((i) => i.id)).toEqual(['edit-alpha', 'edit-beta', 'edit-shared', 'verify']);
  });

  it('validates with every extension used', () => {
    const raw = seed();
    raw.scope = 'discard';
    Object.assign(raw.items[3], {
      needs: { alpha: { from: 'edit-alpha', select: { kind: 'patch' } }, report: { from: 'edit-beta', select: { kind: 'output', path: 'r.json' } } },
      timeoutSeconds: 600,
      retry: { maxAttempts: 3, backoff: { initialSeconds: 2, factor: 2, maxSeconds: 60 } },
      scope: 'fail',
    });
    raw.items.push(cmd('lint', { inputs: { run: 'npm run lint', env: { CI: '1' }, secrets: ['NPM_TOKEN'] }, depends_on: ['verify'] }));
    raw.items.push(cmd('review', { executor: 'dispatch', inputs: { subagent: 'verify', paths: ['src/'] }, subagentShape: 'review' }));
    expect(validatePlan(raw, ctx).ok).toBe(true);
  });
});

describe('structural problems', () => {
  it('names an unknown field and lists the known ones', () => {
    const problems = problemsOf(plan([cmd('a', { dependsOn: ['x'] })], { owner: 'me' }));
    expect(at(problems, '$.owner')).toBe('unknown field "owner"; the known fields here are id, queue, items, scope, timeoutSeconds, max_hops, max_items');
    expect(at(problems, '$.items[0].dependsOn')).toMatch(
      /^unknown field "dependsOn" \(did you mean "depends_on"\?\); the known fields here are id, executor, inputs, depends_on, resourceLocks, subagentShape, needs, timeoutSeconds, retry, scope, matrix, if, continue_on_error$/,
    );
  });

  it('refuses a plan without items, which would run nothing', () => {
    expect(problemsOf(plan([]))).toEqual([
      { path: '$.items', message: 'is empty: a plan runs its items, so it needs at least one; add an item (docs/plan.md)' },
    ]);
  });

  it('says which field is missing and what it holds', () => {
    const { resourceLocks: _, ...noLocks } = cmd('a');
    const problems = problemsOf({ id: 'r', items: [noLocks] });
    expect(at(problems, '$.queue')).toBe('missing required field "queue" (a string); add it');
    expect(at(problems, '$.items[0].resourceLocks')).toBe('missing required field "resourceLocks" (an array); add it');
  });

  it('reports wrong types and values with what was found', () => {
    const problems = problemsOf(
      plan([
        cmd('a', { depends_on: 'b', scope: 'keep', timeoutSeconds: 0, retry: { maxAttempts: 1.5, backoff: { factor: 'x' } } }),
        cmd('b', { needs: { x: { from: 'a', select: { kind: 'diff' } } } }),
        7,
      ]),
    );
    expect(at(problems, '$.items[0].depends_on')).toBe('must be an array, not the string "b"');
    expect(at(problems, '$.items[0].scope')).toBe('must be one of "fail", "discard", not the string "keep"');
    expect(at(problems, '$.items[0].timeoutSeconds')).toBe('must be greater than 0, not number 0');
    expect(at(problems, '$.items[0].retry.maxAttempts')).toBe('must be an integer, not number 1.5');
    expect(at(problems, '$.items[0].retry.backoff.factor')).toBe('must be a number, not the string "x"');
    expect(at(problems, '$.items[1].needs.x.select.kind')).toBe('must be one of "patch", "output", not the string "diff"');
    expect(at(problems, '$.items[2]')).toBe('must be an object, not number 7');
  });

  it('rejects a plan that is not an object', () => {
    expect(problemsOf([])).toEqual([{ path: '$', message: 'must be an object, not an array' }]);
  });
});

describe('ids', () => {
  it('rejects unsafe run and item ids', () => {
    const problems = problemsOf(plan([cmd('ok'), cmd('has space'), cmd('x.lock')], { id: '../evil' }));
    expect(at(problems, '$.id')).toMatch(/^run id "\.\.\/evil" must start with a letter or digit; use 1–100 characters/);
    expect(at(problems, '$.items[1].id')).toMatch(/^item id "has space" contains " "/);
    expect(at(problems, '$.items[2].id')).toMatch(/ends in "\.lock"/);
  });

  it('points at the second of two duplicate ids and names the first', () => {
    const problems = problemsOf(plan([cmd('a'), cmd('b'), cmd('a')]));
    expect(at(problems, '$.items[2].id')).toBe('duplicate item id "a": $.items[0] already has it; give every item its own id');
  });

  it('rejects ids that differ only in letter case (their refs collide on case-insensitive file systems)', () => {
    const problems = problemsOf(plan([cmd('Build'), cmd('build')]));
    expect(at(problems, '$.items[1].id')).toMatch(/differs from "Build" \(\$\.items\[0\]\) only in letter case/);
  });
});

describe('needs binding names', () => {
  // A binding name becomes a file name (the file $AGORA_NEEDS points at): "../../../../config" once
  // overwrote the repository's .git/config.
  it('rejects binding names that are not safe file names, at the binding, saying why and what is allowed', () => {
    const patch = { from: 'a', select: { kind: 'patch' } };
    const problems = problemsOf(
      plan([cmd('a'), cmd('b', { needs: { '../../../../config': patch, 'sub/dir': patch, 'x..y': patch, '': patch, ok_name: patch } })]),
    );
    expect(at(problems, '$.items[1].needs["../../../../config"]')).toMatch(
      /^needs binding name "\.\.\/\.\.\/\.\.\/\.\.\/config" must start with a letter or digit; use 1–100 characters from A–Z a–z 0–9 \. _ -/,
    );
    expect(at(problems, '$.items[1].needs.sub/dir')).toMatch(
      /^needs binding name "sub\/dir" contains "\/", not allowed in a binding name \(it becomes a file name\); use 1–100/,
    );
    expect(at(problems, '$.items[1].needs["x..y"]')).toMatch(/contains "\.\.", which could lead out of the directory its file is written to; use 1–100/);
    expect(at(problems, '$.items[1].needs[""]')).toMatch(/^needs binding name is empty; use 1–100/);
    expect(problems.filter((p) => p.path.includes('ok_name'))).toEqual([]);
    expect(problems).toHaveLength(4);
  });

  it('accepts the binding names the docs use', () => {
    const patch = { from: 'a', select: { kind: 'patch' } };
    expect(validatePlan(plan([cmd('a'), cmd('b', { needs: { alpha: patch, 'report.v2': patch, Bin_1: patch } })]), ctx).ok).toBe(true);
  });
});

describe('dependencies', () => {
  it('reports unknown and self dependencies, in depends_on and in needs', () => {
    const problems = problemsOf(
      plan([
        cmd('build'),
        cmd('test', { depends_on: ['biuld', 'test'] }),
        cmd('pack', { needs: { bin: { from: 'pack', select: { kind: 'patch' } }, doc: { from: 'ghost', select: { kind: 'patch' } } } }),
      ]),
    );
    expect(at(problems, '$.items[1].depends_on[0]')).toBe(
      'unknown item "biuld" (did you mean "build"?): no item has this id; the items are "build", "test", "pack"; fix the id or remove the dependency',
    );
    expect(at(problems, '$.items[1].depends_on[1]')).toBe('the item depends on itself; remove "test" from depends_on');
    expect(at(problems, '$.items[2].needs.bin.from')).toBe('the item needs its own output; name an upstream item instead');
    expect(at(problems, '$.items[2].needs.doc.from')).toMatch(/^unknown item "ghost"/);
  });

  it('reports one problem per cycle, printing the cycle, at the edge that starts it', () => {
    const problems = problemsOf(
      plan([
        cmd('a', { depends_on: ['b'] }),
        cmd('b', { depends_on: ['c'] }),
        cmd('c', { needs: { in: { from: 'a', select: { kind: 'patch' } } }, depends_on: ['b'] }),
        cmd('d'),
      ]),
    );
    expect(problems.filter((p) => p.message.startsWith('cycle: '))).toEqual([
      { path: '$.items[0].depends_on[0]', message: expect.stringMatching(/^cycle: a → b → c → a; /) },
      { path: '$.items[1].depends_on[0]', message: expect.stringMatching(/^cycle: b → c → b; /) },
    ]);
    expect(problems).toHaveLength(2);
    expect(problems[0]!.message).toContain('remove one of these dependencies');
  });

  it('locates a cycle closed only through needs at the binding', () => {
    const problems = problemsOf(plan([cmd('a', { needs: { x: { from: 'b', select: { kind: 'patch' } } } }), cmd('b', { depends_on: ['a'] })]));
    expect(at(problems, '$.items[0].needs.x.from')).toMatch(/^cycle: a → b → a/);
  });
});

describe('locks', () => {
  it('reports each bad lock key at its index with how to write it', () => {
    const problems = problemsOf(plan([cmd('a', { resourceLocks: ['src/', '/etc/passwd', 'a\\b', '../up', '.git/hooks'] })]));
    expect(at(problems, '$.items[0].resourceLocks[1]')).toMatch(/is absolute; write a repository path/);
    expect(at(problems, '$.items[0].resourceLocks[2]')).toMatch(/backslash/);
    expect(at(problems, '$.items[0].resourceLocks[3]')).toMatch(/"\.\." component/);
    expect(at(problems, '$.items[0].resourceLocks[4]')).toMatch(/names "\.git"/);
    expect(problems).toHaveLength(4);
  });

  it('accepts resource keys and refuses a key that is neither a path nor a resource key, at its JSON path, with the fix', () => {
    expect(validatePlan(plan([cmd('a', { resourceLocks: ['resource:deploy/prod', 'src/'] })]), ctx).ok).toBe(true);
    const problems = problemsOf(plan([cmd('a', { resourceLocks: ['resource:', 'resource:deploy//prod', 'Resource:db', 'resource:../x'] })]));
    expect(at(problems, '$.items[0].resourceLocks[0]')).toMatch(/^resource key "resource:" names no resource; write "resource:" followed by a name/);
    expect(at(problems, '$.items[0].resourceLocks[1]')).toMatch(/empty component/);
    expect(at(problems, '$.items[0].resourceLocks[2]')).toMatch(/wrong case; .*like "resource:deploy\/prod"/);
    expect(at(problems, '$.items[0].resourceLocks[3]')).toMatch(/the component "\.\.", which is not a name/);
    expect(problems).toHaveLength(4);
    expect(() => assertValidPlan(plan([cmd('a', { resourceLocks: ['resource:'] })]), ctx, 'plan.json')).toThrow(InvalidInputError);
  });
});

describe('executors and inputs', () => {
  it('names the executors when one is unknown', () => {
    const problems = problemsOf(plan([cmd('a', { executor: 'shell' })]));
    expect(at(problems, '$.items[0].executor')).toMatch(/^unknown executor "shell"; the executors are "command" .* and "dispatch" /);
  });

  it('checks command inputs: run, env and secrets', () => {
    const problems = problemsOf(
      plan([
        cmd('a', { inputs: {} }),
        cmd('b', { inputs: { run: '  ', env: { 'BAD-NAME': 'x', N: 3 }, secrets: 'TOKEN' } }),
        cmd('c', { inputs: { run: 'make', env: [], secrets: ['GH_TOKEN', '2FA', 5] } }),
      ]),
    );
    expect(at(problems, '$.items[0].inputs.run')).toBe('missing: a command item needs inputs.run, the shell command to run (a non-empty string)');
    expect(at(problems, '$.items[1].inputs.run')).toMatch(/^must be the shell command to run \(a non-empty string\)/);
    expect(at(problems, '$.items[1].inputs.env.BAD-NAME')).toMatch(/not an environment variable name; use letters, digits and _/);
    expect(at(problems, '$.items[1].inputs.env.N')).toMatch(/^must be a string, not number 3/);
    expect(at(problems, '$.items[1].inputs.secrets')).toMatch(/^must be an array of environment variable names, like \["GITHUB_TOKEN"\]/);
    expect(at(problems, '$.items[2].inputs.env')).toMatch(/^must be an object of environment variable names to string values, not an array/);
    expect(at(problems, '$.items[2].inputs.secrets[1]')).toMatch(/"2FA" is not an environment variable name/);
    expect(at(problems, '$.items[2].inputs.secrets[2]')).toMatch(/number 5 is not an environment variable name/);
    expect(problems).toHaveLength(8);
  });

  it('checks dispatch inputs: the subagent exists and workerInput fits its inputSchema', () => {
    const raw = seed();
    raw.items[0].inputs.subagent = 'code-edti';
    raw.items[1].inputs.workerInput = { file: 'beta.js', mode: 'quick', extra: true };
    delete raw.items[2].inputs.workerInput.file;
    delete raw.items[3].inputs.subagent;
    const problems = problemsOf(raw);
    expect(at(problems, '$.items[0].inputs.subagent')).toBe(
      'unknown subagent "code-edti" (did you mean "code-edit"?); the configured subagents are "code-edit", "verify"',
    );
    expect(at(problems, '$.items[1].inputs.workerInput.file')).toBe('must match pattern "\\.ts$" (the inputSchema of subagent "code-edit")');
    expect(at(problems, '$.items[1].inputs.workerInput.mode')).toBe(
      'must be one of "fast", "careful", not the string "quick" (the inputSchema of subagent "code-edit")',
    );
    expect(at(problems, '$.items[1].inputs.workerInput.extra')).toBe(
      'unknown property "extra", not allowed by the inputSchema of subagent "code-edit"; allowed: file, mode',
    );
    expect(at(problems, '$.items[2].inputs.workerInput.file')).toBe('missing required property "file" (the inputSchema of subagent "code-edit")');
    expect(at(problems, '$.items[3].inputs.subagent')).toMatch(
      /^missing: a dispatch item needs inputs.subagent, .*; the configured subagents are "code-edit", "verify"$/,
    );
    expect(problems).toHaveLength(6);
  });

  it('says how to configure a subagent when there are none', () => {
    const problems = problemsOf(seed(), { subagents: {}, shapes: {} });
    expect(problems).toHaveLength(4);
    expect(at(problems, '$.items[3].inputs.subagent')).toBe(
      'unknown subagent "verify"; no subagents are configured: add one under `orch.subagents` in agora.config.mjs',
    );
  });

  it('checks subagentShape: the shape exists and inputs satisfy it', () => {
    const review = (id: string, shape: string, inputs: Record<string, unknown>) =>
      cmd(id, { executor: 'dispatch', inputs: { subagent: 'verify', ...inputs }, subagentShape: shape });
    const problems = problemsOf(plan([review('a', 'reveiw', { paths: ['x'] }), review('b', 'review', { paths: [] }), review('c', 'review', { paths: [1] })]));
    expect(at(problems, '$.items[0].subagentShape')).toBe('unknown shape "reveiw" (did you mean "review"?); the configured shapes are "review"');
    expect(at(problems, '$.items[1].inputs.paths')).toBe('must NOT have fewer than 1 items (shape "review")');
    expect(at(problems, '$.items[2].inputs.paths[0]')).toBe('must be string, not number 1 (shape "review")');
  });

  it('reports a subagent schema that does not compile instead of throwing', () => {
    const broken: ValidationContext = { subagents: { 'code-edit': { inputSchema: { type: 'nonsense' } } }, shapes: {} };
    const raw = plan([cmd('a', { executor: 'dispatch', inputs: { subagent: 'code-edit', workerInput: {} } })]);
    expect(at(problemsOf(raw, broken), '$.items[0].inputs.workerInput')).toMatch(
      /^cannot be checked: the inputSchema of subagent "code-edit" is not a valid JSON Schema \(schema is invalid: .*\); fix it in agora.config.mjs$/,
    );
  });
});

describe('reporting', () => {
  it('reports every problem at once, sorted by path (indices numerically)', () => {
    const items = Array.from({ length: 12 }, (_, i) => cmd(`i${i}`));
    items[10] = cmd('i10', { executor: 'nope' });
    items[2] = cmd('i2', { depends_on: ['zz'] });
    items[9] = cmd('bad id');
    const raw = plan(items, { id: 'bad run', extra: 1 });
    const problems = problemsOf(raw);
    expect(problems.map((p) => p.path)).toEqual(['$.extra', '$.id', '$.items[2].depends_on[0]', '$.items[9].id', '$.items[10].executor']);
  });

  it('assertValidPlan throws plan-invalid with every problem, the source and a hint', () => {
    const raw = plan([cmd('a', { depends_on: ['a'] }), cmd('a')]);
    try {
      assertValidPlan(raw, ctx, 'refs/agora/inbox/run-1');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidInputError);
      const e = error as InvalidInputError;
      expect(e.code).toBe('plan-invalid');
      expect(e.source).toBe('refs/agora/inbox/run-1');
      expect(e.problems.map((p) => p.path)).toEqual(['$.items[0].depends_on[0]', '$.items[1].id']);
      expect(e.message).toMatch(/^refs\/agora\/inbox\/run-1: 2 problems\n {2}\$\.items\[0\]\.depends_on\[0\]: the item depends on itself/);
      expect(e.hint).toMatch(/docs\/plan\.md/);
    }
  });

  it('writes JSON paths with dots for plain keys and quotes otherwise', () => {
    expect(formatJsonPath(['orch', 'subagents', 'code-edit', 'command', 0])).toBe('$.orch.subagents.code-edit.command[0]');
    expect(formatJsonPath(['env', 'A B', 'x.y'])).toBe('$.env["A B"]["x.y"]');
    expect(formatJsonPath([])).toBe('$');
  });
});
