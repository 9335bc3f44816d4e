import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, CLI, exited, makeRepo } from '../support/repo.js';
import { eventually } from '../support/eventually.js';
import { workerGate } from '../support/gate.js';

/**
 * Two `agora orch run`s in one repository: the first holds it and serves only its own run, so the second
 * cannot hand its plan over as it does to a `serve`. It waits for the first to let go, says so once, and
 * then serves its own run; before, it followed a run nobody would ever accept and never returned.
 */

afterAll(cleanupTempDirs);

function plan(id: string, run: string, writes: string): string {
  return JSON.stringify({ id, queue: 'default', items: [{ id: 'only', executor: 'command', inputs: { run }, depends_on: [], resourceLocks: [writes] }] });
}

/** `agora orch run <file>` in the background, its stderr kept. */
function startRun(repo: string, file: string) {
  const child = spawn(process.execPath, [CLI, 'orch', 'run', file, '--poll-ms', '100'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return Object.assign(child, { stderr: () => err });
}

describe('agora orch run beside another agora orch run', () => {
  it('waits for the first to end, then serves its own run to the end', async () => {
    const gate = workerGate();
    const repo = makeRepo({
      'first.json': plan('first', `${gate.wait}; echo 1 > one.txt`, 'one.txt'),
      'second.json': plan('second', 'echo 2 > two.txt', 'two.txt'),
    });
    const first = startRun(repo, 'first.json');
    await eventually('the first run to be served', () => /serving|first-1/.test(first.stderr()) || undefined);
    await eventually('its worker to be running', async () => {
      const s = await agora(repo, ['orch', 'status', 'first-1']);
      return (s.code === 0 && (JSON.parse(s.stdout) as { items?: Array<{ status: string }> }).items?.[0]?.status === 'running') || undefined;
    });
    const second = startRun(repo, 'second.json');
    await eventually('the second to say what it waits for', () => /second-1 starts when it ends/.test(second.stderr()) || undefined);
    expect(second.stderr()).toMatch(new RegExp(`the agora orch run of first-1 \\(pid ${first.pid}\\) holds this repository`));
    expect(second.exitCode).toBeNull();

    await gate.open();
    expect(await exited(first), first.stderr()).toBe(0);
    expect(await exited(second), second.stderr()).toBe(0);
    const done = JSON.parse((await agora(repo, ['orch', 'status', 'second-1'])).stdout) as { status: string };
    expect(done.status).toBe('done');
    await gate.remove();
  });
});
