/**
 * Named points in the storage and run steps where the crash campaign (`npm run chaos`, test/chaos) kills
 * this process. `AGORA_CRASH_AT=<point>:<n>` makes the n-th pass through `<point>` (counting from 1)
 * send SIGKILL to the process itself, so the crash lands exactly there: a temporary file written but not
 * renamed, a state commit written but its ref not moved. Unset (always, outside the campaign), a pass
 * costs one comparison.
 *
 * Code that runs inside a test's own process (the GitHub App on the simulator) cannot be killed with its
 * process: a test arms a point with {@link armCrashPoint} instead. The n-th pass then calls the test's
 * `crash` (e.g. the App's `kill()`, which stops everything it runs) and throws {@link CrashedAt}, so
 * nothing after the point runs on that path either.
 */
const spec = parse(process.env.AGORA_CRASH_AT);
let passes = 0;
let armed: { point: string; n: number; passes: number; crash: () => void } | null = null;

function parse(value: string | undefined): { point: string; n: number } | null {
  if (!value) return null;
  const colon = value.lastIndexOf(':');
  const n = Number(value.slice(colon + 1));
  return colon > 0 && Number.isInteger(n) && n > 0 ? { point: value.slice(0, colon), n } : null;
}

/** Thrown by an armed point's crashing pass (in-process crashes only). */
export class CrashedAt extends Error {
  override readonly name = 'CrashedAt';
  constructor(readonly point: string) {
    super(`crashed at ${point} (armed by a test)`);
  }
}

/** Arms one in-process crash: the `n`-th pass through `point` from now calls `crash`, then throws. */
export function armCrashPoint(point: string, n: number, crash: () => void): void {
  armed = { point, n, passes: 0, crash };
}

export function crashPoint(point: string): void {
  if (armed !== null && armed.point === point && ++armed.passes === armed.n) {
    const { crash } = armed;
    armed = null;
    crash();
    throw new CrashedAt(point);
  }
  if (spec === null || spec.point !== point) return;
  passes += 1;
  if (passes === spec.n) process.kill(process.pid, 'SIGKILL');
}
