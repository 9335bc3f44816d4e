/**
 * Named points in the storage and run steps where the crash campaign (`npm run chaos`, test/chaos) kills
 * this process. `AGORA_CRASH_AT=<point>:<n>` makes the n-th pass through `<point>` (counting from 1)
 * send SIGKILL to the process itself, so the crash lands exactly there: a temporary file written but not
 * renamed, a state commit written but its ref not moved. Unset (always, outside the campaign), a pass
 * costs one comparison.
 */
const spec = parse(process.env.AGORA_CRASH_AT);
let passes = 0;

function parse(value: string | undefined): { point: string; n: number } | null {
  if (!value) return null;
  const colon = value.lastIndexOf(':');
  const n = Number(value.slice(colon + 1));
  return colon > 0 && Number.isInteger(n) && n > 0 ? { point: value.slice(0, colon), n } : null;
}

export function crashPoint(point: string): void {
  if (spec === null || spec.point !== point) return;
  passes += 1;
  if (passes === spec.n) process.kill(process.pid, 'SIGKILL');
}
