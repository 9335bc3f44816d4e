import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { ROOT } from '../support/repo.js';

/** docs/cli.md against the program: every command a user can run is listed in its overview. */

const CLI_MD = readFileSync(join(ROOT, 'docs/cli.md'), 'utf8');
/** The overview: the first fenced block, one `agora …` line per command. */
const OVERVIEW = /```\n([\s\S]*?)```/.exec(CLI_MD)![1]!;

/** Every command that runs something (not a group such as `orch` or `keys`), as `agora orch run`. */
function leaves(c: Command, prefix: string): string[] {
  const path = `${prefix} ${c.name()}`;
  return c.commands.length === 0 ? [path] : c.commands.flatMap((sub) => leaves(sub, path));
}

describe('docs/cli.md', () => {
  it('lists every command the program has in its overview', () => {
    const program = buildProgram();
    const commands = program.commands.flatMap((c) => leaves(c, 'agora'));
    expect(commands).toEqual(expect.arrayContaining(['agora app', 'agora orch run', 'agora keys generate', 'agora verify']));
    const listed = OVERVIEW.split('\n').filter((l) => l.startsWith('agora '));
    for (const command of commands)
      expect(
        listed.filter((l) => l.startsWith(`${command} `)),
        command,
      ).not.toEqual([]);
  });

  it('describes `agora app` as it is: no argument and no option, configured by the environment', () => {
    const app = buildProgram().commands.find((c) => c.name() === 'app')!;
    expect(app.registeredArguments).toEqual([]);
    expect(app.options).toEqual([]);
    const section = CLI_MD.slice(CLI_MD.indexOf('## `app`'));
    expect(section.indexOf('## `app`')).toBe(0);
    expect(section).toContain('It takes no argument and no option but `--help`');
    for (const variable of ['APP_ID', 'PRIVATE_KEY', 'PRIVATE_KEY_PATH', 'WEBHOOK_SECRET']) expect(section).toContain(`\`${variable}\``);
  });
});
