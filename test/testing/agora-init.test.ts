import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lastToolResults, say, startMessagesApi, turnOf, useTool, type MessagesRequest, type Reply } from '../support/messages-api.js';
import { scaled } from '../support/eventually.js';
import { agora, cleanupTempDirs, git, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** The agent template's two agents, as a loopback Messages API plays them. */
function agentTemplateScript(req: MessagesRequest): Reply {
  if ((req.system ?? '').startsWith('You are a proofreader')) {
    return turnOf(req) === 1 ? useTool('read_file', JSON.parse(req.messages[0]!.content as string) as unknown) : say('no mistakes');
  }
  switch (turnOf(req)) {
    case 1:
      return useTool('read_file', { path: 'notes/ideas.md' });
    case 2:
      return useTool('write_file', { path: 'notes/summary.md', content: `- ${lastToolResults(req)[0]!.content.split('\n')[2]!.slice(2)}\n` });
    case 3:
      return useTool('call_proofreader', { path: 'notes/summary.md' });
    default:
      return say(JSON.stringify({ summary: `wrote notes/summary.md; the proofreader said: ${lastToolResults(req)[0]!.content}` }));
  }
}

interface Status {
  status: string;
  integrationHead: string;
  items: Array<{ id: string; status: string }>;
}

/** What each template's real run leaves in its integration head (the template's own workers, run for real). */
const RESULT: Record<string, [path: string, text: string]> = {
  'fan-out': ['INDEX.md', '| alpha.txt | 3 | apples |'],
  pipeline: ['build/report.md', '| kitchen | 21.5 |'],
  'map-reduce': ['result.json', '"ada": 15'],
};

describe('agora init', () => {
  for (const template of ['fan-out', 'pipeline', 'map-reduce']) {
    it(`--template ${template}: the new project's fixture passes at once and its plan runs at once`, async () => {
      const parent = tempDir();
      const init = await agora(parent, ['init', 'project', '--template', template]);
      expect(init.stderr).toBe('');
      expect(init.code).toBe(0);
      const dir = join(parent, 'project');
      expect(init.stdout).toContain(`created project from the ${template} template`);
      for (const file of ['plan.json', 'agora.config.mjs', 'README.md', `tests/fixture-${template}.json`]) expect(init.stdout).toContain(`  ${file}\n`);
      // Everything written is committed: a run starts from HEAD.
      expect(git(dir, 'status', '--porcelain')).toBe('');
      expect(git(dir, 'log', '--format=%s')).toBe(`agora init: the ${template} template\n`);

      const test = await agora(dir, ['test']);
      expect(test.stdout).toContain(`PASS tests/fixture-${template}.json`);
      expect(test.code).toBe(0);

      const run = await agora(dir, ['orch', 'run', 'plan.json', '--json']);
      expect(run.code).toBe(0);
      const final = JSON.parse(run.stdout.trim().split('\n').pop()!) as Status;
      expect(final.status).toBe('done');
      expect(final.items.every((i) => i.status === 'done')).toBe(true);
      const [path, text] = RESULT[template]!;
      expect(git(dir, 'show', `${final.integrationHead}:${path}`)).toContain(text);
    });
  }

  it('--template agent: the fixture passes at once, and the plan runs against the base URL the user sets', async () => {
    const parent = tempDir();
    const init = await agora(parent, ['init', 'project', '--template', 'agent']);
    expect(init.code, init.stderr).toBe(0);
    const dir = join(parent, 'project');
    for (const file of ['plan.json', 'agora.config.mjs', 'README.md', 'prompts/editor.md', 'tests/fixture-agent.json'])
      expect(init.stdout).toContain(`  ${file}\n`);
    const test = await agora(dir, ['test']);
    expect(test.stdout).toContain('PASS tests/fixture-agent.json');
    expect(test.code).toBe(0);

    const api = await startMessagesApi(agentTemplateScript);
    try {
      const run = await agora(dir, ['orch', 'run', 'plan.json', '--json'], {
        ANTHROPIC_BASE_URL: api.url,
        ANTHROPIC_API_KEY: 'sk-ant-template-test-key-0123456789',
      });
      expect(run.code, run.stderr).toBe(0);
      const final = JSON.parse(run.stdout.trim().split('\n').pop()!) as Status;
      expect(final.items).toEqual([expect.objectContaining({ id: 'summarise', status: 'done' })]);
      expect(git(dir, 'show', `${final.integrationHead}:notes/summary.md`)).toBe(
        '- Keep the weekly meeting to thirty minutes; send the agenda the day before.\n',
      );
      // The editor and its dependency both ran against the loopback server: 4 turns and 2.
      expect(api.seen.map((s) => (s.body.system ?? '').split(' ').slice(0, 5).join(' '))).toEqual([
        ...Array<string>(3).fill('You are the editor of'),
        'You are a proofreader. You',
        'You are a proofreader. You',
        'You are the editor of',
      ]);
    } finally {
      await api.close();
    }
  });

  it('refuses an unknown template (bad usage: exit 2) and a directory that is not empty, writing nothing', async () => {
    const parent = tempDir();
    const unknown = await agora(parent, ['init', 'p', '--template', 'agents']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('agora: there is no template "agents"\nhint: use one of: fan-out, pipeline, map-reduce, agent\n');
    expect(readdirSync(parent)).toEqual([]);
    mkdirSync(join(parent, 'busy'));
    writeFileSync(join(parent, 'busy', 'plan.json'), '{"mine": true}\n');
    const busy = await agora(parent, ['init', 'busy', '--template', 'pipeline']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain('is not empty (plan.json); agora init writes only into a new or empty directory');
    expect(readdirSync(join(parent, 'busy'))).toEqual(['plan.json']);
  });

  it('refuses a <dir> under a regular file, naming both, writing nothing', async () => {
    const parent = tempDir();
    writeFileSync(join(parent, 'somefile'), 'mine\n');
    const r = await agora(parent, ['init', 'somefile/sub', '--template', 'pipeline']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `agora: ${join(parent, 'somefile/sub')} lies under ${join(parent, 'somefile')}, which is a file, not a directory\n` +
        'hint: name a new or empty directory where one can be created\n',
    );
    expect(readdirSync(parent)).toEqual(['somefile']);
  });

  it.skipIf(!existsSync('/proc/self'))("refuses a <dir> under /proc at once (Node's recursive mkdir would spin there for ever)", async () => {
    const r = await agora(tempDir(), ['init', '/proc/agora-nowhere/sub', '--template', 'pipeline'], {}, scaled(30_000));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('agora: /proc/agora-nowhere/sub needs /proc/agora-nowhere, which cannot be created: /proc takes no new directories');
  });
});
