import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import type * as fsPromises from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { listWorkspaceFiles, readWorkspaceFile, ToolRefusal, writeWorkspaceFile } from '../../src/agents/workspace-files.js';

// The real functions, so that a test can make one fail as the file system would for a user it denies
// (these tests may run as root, whom a mode of 000 does not stop).
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof fsPromises>();
  return { ...real, readFile: vi.fn(real.readFile) };
});

/**
 * The agent's file tools on a real directory: a workspace may hold symbolic links a commit planted, and
 * the model chooses the paths, so neither may reach a file outside the workspace.
 */

let root: string;
let ws: string;
let outside: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'agora-ws-files-'));
  ws = join(root, 'ws');
  outside = join(root, 'outside');
  mkdirSync(join(ws, 'docs'), { recursive: true });
  mkdirSync(join(ws, '.git'));
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), 'the host key\n');
  writeFileSync(join(ws, 'docs', 'a.md'), 'inside\n');
  writeFileSync(join(ws, '.git', 'config'), '[core]\n');
  symlinkSync(join(outside, 'secret.txt'), join(ws, 'docs', 'leak.md'));
  symlinkSync(outside, join(ws, 'docs', 'out'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ToolRefusal) return e.message;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('the file tools', () => {
  it('read and write inside the workspace and the scope', async () => {
    expect(await readWorkspaceFile(ws, 'docs/a.md')).toBe('inside\n');
    expect(await writeWorkspaceFile(ws, 'docs/new/b.md', 'b\n', ['docs/'])).toBe(2);
    expect(readFileSync(join(ws, 'docs/new/b.md'), 'utf8')).toBe('b\n');
    expect(await listWorkspaceFiles(ws, undefined)).toEqual(['docs/', 'docs/a.md', 'docs/leak.md', 'docs/new/', 'docs/new/b.md', 'docs/out']);
  });

  it('refuse a symbolic link that leads outside, for reading and for writing through it', async () => {
    expect(await refusal(readWorkspaceFile(ws, 'docs/leak.md'))).toContain('resolves outside the workspace');
    expect(await refusal(readWorkspaceFile(ws, 'docs/out/secret.txt'))).toContain('resolves outside the workspace');
    expect(await refusal(writeWorkspaceFile(ws, 'docs/out/planted.txt', 'x', ['docs/']))).toContain('resolves outside the workspace');
    expect(await refusal(writeWorkspaceFile(ws, 'docs/leak.md', 'x', ['docs/']))).toContain('resolves outside the workspace');
    expect(await refusal(listWorkspaceFiles(ws, 'docs/out'))).toContain('resolves outside the workspace');
    expect(existsSync(join(outside, 'planted.txt'))).toBe(false);
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('the host key\n');
  });

  it('refuse .., absolute paths, .git, and writes outside the scope, saying why', async () => {
    expect(await refusal(readWorkspaceFile(ws, '../outside/secret.txt'))).toContain('leaves the workspace');
    expect(await refusal(readWorkspaceFile(ws, join(outside, 'secret.txt')))).toContain('is absolute');
    expect(await refusal(readWorkspaceFile(ws, 'docs/../.git/config'))).toContain('inside .git');
    expect(await refusal(writeWorkspaceFile(ws, 'README.md', 'x', ['docs/']))).toBe(
      "refused: README.md is outside this item's write scope (docs/); write only paths under those locks",
    );
    expect(await refusal(writeWorkspaceFile(ws, 'docs/c.md', 'x', []))).toContain('holds no resourceLocks');
    expect(existsSync(join(ws, 'README.md'))).toBe(false);
  });

  it('refuse a file the server may not read, naming the path as given, never the host path', async () => {
    writeFileSync(join(ws, 'docs', 'locked.md'), 'x');
    chmodSync(join(ws, 'docs', 'locked.md'), 0o000);
    const denied = Object.assign(new Error(`EACCES: permission denied, open '${join(ws, 'docs', 'locked.md')}'`), {
      code: 'EACCES',
      syscall: 'open',
      path: join(ws, 'docs', 'locked.md'),
    });
    if (process.getuid?.() === 0) vi.mocked(readFile).mockRejectedValueOnce(denied);
    expect(await refusal(readWorkspaceFile(ws, 'docs/locked.md'))).toBe('path docs/locked.md cannot be used: permission denied');
  });
});
