import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, git, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** The secret of the run, and the forms a careless worker prints it in (computed here, independently). */
const SECRET = 'tok-3f9a8b7c?Zq8v>T3xYw2Lk';
const HALVES = [SECRET.slice(0, 13), SECRET.slice(13)];

function leakedForms(): Record<string, string> {
  const bytes = Buffer.from(SECRET);
  // Inside `token=<secret>` (6 bytes before it: offset 0 of 3), the base64 characters of the secret alone.
  const stream = Buffer.from(`token=${SECRET}\n`).toString('base64');
  return {
    literal: SECRET,
    'first half': HALVES[0]!,
    'second half': HALVES[1]!,
    base64: bytes.toString('base64'),
    'base64, URL-safe': bytes.toString('base64url'),
    'base64 inside a stream': stream.slice(8, Math.floor(((6 + bytes.length) * 8) / 6)),
    hex: bytes.toString('hex'),
    'hex, upper case': bytes.toString('hex').toUpperCase(),
    'URL-encoded': encodeURIComponent(SECRET),
  };
}

function findLeaks(where: string, text: string): string[] {
  return Object.entries(leakedForms())
    .filter(([, form]) => text.includes(form))
    .map(([name]) => `${name} in ${where}`);
}

/**
 * A worker that prints its secret base64-encoded, hex-encoded, URL-encoded and split across two lines,
 * and ends on a line holding it (which becomes the item's reason); another names a file after it (the
 * scope failure's reason names the path). Nothing Agora stores or shows holds the secret in any form.
 */
describe('secret redaction, end to end', () => {
  it('keeps every form of a secret out of the logs, the reasons, the state chain and the audit bundle', async () => {
    const leaky = [
      `printf '%s' "$API_TOKEN" | base64`,
      `printf 'token=%s\\n' "$API_TOKEN" | base64`,
      `printf '%s' "$API_TOKEN" | od -An -tx1 | tr -d ' \\n'; echo`,
      `printf '%s' "$API_TOKEN" | od -An -tx1 | tr -d ' \\n' | tr a-f A-F; echo`,
      `printf '%s\\n' "$API_TOKEN" | sed 's/?/%3F/; s/>/%3E/'`,
      `printf '%s' "$API_TOKEN" | cut -c1-13; printf '%s\\n' "$API_TOKEN" | cut -c14-`,
      `printf 'giving up on %s\\n' "$(printf '%s' "$API_TOKEN" | base64)"`,
      'exit 3',
    ].join('\n');
    const plan = {
      id: 'leak',
      queue: 'default',
      items: [
        { id: 'prints', executor: 'command', inputs: { run: leaky, secrets: ['API_TOKEN'] }, depends_on: [], resourceLocks: [] },
        {
          id: 'names-a-file',
          executor: 'command',
          inputs: { run: 'mkdir -p out && touch "leak-$API_TOKEN"', secrets: ['API_TOKEN'] },
          depends_on: [],
          resourceLocks: ['out/'],
        },
      ],
    };
    const repo = makeRepo({ 'plan.json': JSON.stringify(plan), 'agora.config.mjs': "export const orch = { secrets: ['API_TOKEN'] };\n" });
    const run = await agora(repo, ['orch', 'run', 'plan.json'], { API_TOKEN: SECRET });
    expect(run.code).toBe(1);

    const status = JSON.parse((await agora(repo, ['orch', 'status', 'leak-1'])).stdout) as { items: Array<{ id: string; status: string; reason?: string }> };
    const byId = new Map(status.items.map((i) => [i.id, i]));
    expect(byId.get('prints')).toMatchObject({ status: 'failed', reason: 'exited with code 3: giving up on ***' });
    expect(byId.get('names-a-file')?.status).toBe('failed');
    expect(byId.get('names-a-file')?.reason).toContain('leak-***');

    const log = (await agora(repo, ['orch', 'logs', 'leak-1', 'prints'])).stdout;
    expect(log.split('\n').filter((l) => l.includes('***')).length).toBeGreaterThanOrEqual(6);
    const bundlePath = join(repo, '.git', 'leak.audit.json');
    await agora(repo, ['orch', 'audit', 'leak-1', '--out', bundlePath]);

    const leaks = [
      ...findLeaks('the output of orch run', run.stdout + run.stderr),
      ...findLeaks('orch status', JSON.stringify(status)),
      ...findLeaks('the log', log),
      ...findLeaks('the state chain (state.json, entries.jsonl, logs)', git(repo, 'log', '-p', '--all')),
      ...findLeaks('the audit bundle', readFileSync(bundlePath, 'utf8')),
    ];
    expect(leaks).toEqual([]);
  });

  it('refuses to run when a secret the config offers to plans is too short, before the plan is submitted', async () => {
    const plan = {
      id: 'short',
      queue: 'default',
      items: [{ id: 'use', executor: 'command', inputs: { run: 'echo "$PIN"', secrets: ['PIN'] }, depends_on: [], resourceLocks: [] }],
    };
    const repo = makeRepo({ 'plan.json': JSON.stringify(plan), 'agora.config.mjs': "export const orch = { secrets: ['PIN'] };\n" });
    const r = await agora(repo, ['orch', 'run', 'plan.json'], { PIN: '4711' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('secret PIN (needed by the config (orch.secrets)) is shorter than 8 characters');
    expect(r.stderr + r.stdout).not.toContain('4711');
    expect(git(repo, 'for-each-ref', 'refs/agora/')).toBe('');
  });

  it("refuses to run when a subagent's configured secret is too short, before the plan is submitted", async () => {
    const config = `export const orch = { subagents: { review: { command: ['true'], secrets: ['REVIEW_TOKEN'] } } };\n`;
    const plan = {
      id: 'cfg',
      queue: 'default',
      items: [{ id: 'use', executor: 'dispatch', inputs: { subagent: 'review' }, depends_on: [], resourceLocks: [] }],
    };
    const repo = makeRepo({ 'agora.config.mjs': config, 'plan.json': JSON.stringify(plan) });
    const r = await agora(repo, ['orch', 'run', 'plan.json'], { REVIEW_TOKEN: 'abc' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('secret REVIEW_TOKEN (needed by subagent review) is shorter than 8 characters');
    expect(r.stderr).toContain('give REVIEW_TOKEN a value of at least 8 characters');
    expect(git(repo, 'for-each-ref', 'refs/agora/')).toBe('');
    const served = await agora(repo, ['orch', 'serve'], { REVIEW_TOKEN: 'abc' });
    expect(served.code).toBe(1);
    expect(served.stderr).toContain('secret REVIEW_TOKEN (needed by subagent review) is shorter than 8 characters');
  });
});
