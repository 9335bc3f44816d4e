import { logUpdateStderr } from 'log-update';
import { SILENT, type Progress } from '../progress.js';

/** At most this often the line is redrawn: counting is cheap, drawing is not. */
const REDRAW_MS = 100;

export interface ProgressLine extends Progress {
  /** Erases the line (call when the work ends, before the result is printed). */
  clear(): void;
}

/**
 * Progress as one line on stderr (`agora: patches checked 412/1000`), redrawn in place, only when stderr
 * is a terminal: piped or redirected, the command prints nothing extra. stdout stays the result's alone.
 */
export function progressLine(stream: { isTTY?: boolean } = process.stderr, now: () => number = Date.now): ProgressLine {
  if (!stream.isTTY) return { ...SILENT, clear() {} };
  let label = '';
  let total: number | undefined;
  let done = 0;
  let drawnAt = -Infinity;
  const draw = (force: boolean) => {
    const t = now();
    if (!force && t - drawnAt < REDRAW_MS) return;
    drawnAt = t;
    logUpdateStderr(`agora: ${label} ${total === undefined ? done : `${done}/${total}`}`);
  };
  return {
    phase(next, size) {
      label = next;
      total = size;
      done = 0;
      draw(true);
    },
    advance(by = 1) {
      done += by;
      draw(done === total);
    },
    clear() {
      if (drawnAt !== -Infinity) logUpdateStderr.clear();
    },
  };
}
