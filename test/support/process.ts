import { readFileSync } from 'node:fs';

/** Gone, or a zombie: this sandbox's pid 1 does not reap orphans, so a killed process may linger as Z. */
export function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .startsWith('Z');
  } catch {
    return true;
  }
}

/** SIGKILLs the process group of each pid in `leaders` (emptying the list); groups already gone are skipped. */
export function killGroups(leaders: number[]): void {
  for (const pid of leaders.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** The parent's pid of a live process (field 4 of /proc/<pid>/stat). */
export function parentOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
}
