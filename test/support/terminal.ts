import { execFile } from 'node:child_process';
import { scaled } from './eventually.js';
import { CLI } from './repo.js';

/** Runs `agora …` with stdout on a real terminal (util-linux `script` allocates a pseudo-terminal). */
export function agoraOnTerminal(cwd: string, args: string[]): Promise<{ code: number | null; screen: string }> {
  // A pseudo-terminal `script` makes has no size: give it one, as a real terminal has.
  const command = `stty rows 50 cols 120; ${[process.execPath, CLI, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')}`;
  return new Promise((resolve) => {
    execFile('script', ['-qec', command, '/dev/null'], { cwd, timeout: scaled(60_000), env: { ...process.env, TERM: 'xterm' } }, (err, stdout) => {
      const code = err ? ((err as { code?: number | string }).code as number | null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, screen: stdout });
    });
  });
}
