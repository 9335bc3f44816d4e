/**
 * Waiting in tests: on a condition, never on time alone. A test names what it waits for, the condition
 * that says it happened, and a bound written for the reference machine; the bound is scaled by the
 * machine factor the suite measured at start (see machine.ts and docs/testing.md), so a slow or busy
 * machine gets more time and a broken feature still fails, naming what never happened.
 */
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** How much slower than the reference machine this one is (≥ 1). */
    machineFactor: number;
  }
}

let current: number | undefined;

/** The machine factor now: the larger of the run's and the one measured before this test file (1 on the reference machine). */
export function machineFactor(): number {
  return Math.max(inject('machineFactor') ?? 1, current ?? 1);
}

/** Records the factor measured before this test file (setup-machine.ts). */
export function setFileMachineFactor(factor: number): void {
  current = factor;
}

/** `ms` on the reference machine, scaled to this one. */
export function scaled(ms: number): number {
  return Math.ceil(ms * machineFactor());
}

export interface EventuallyOptions {
  /** The bound on the reference machine (ms, default 30 s); scaled by the machine factor. */
  within?: number;
  /** Pause between looks (ms, default 50). */
  every?: number;
  /** Runs before each look (e.g. let a simulator deliver what it queued). */
  before?: () => Promise<unknown>;
}

/**
 * Resolves with the first value of `probe` that is neither undefined, null nor false; throws
 * `timed out after N ms waiting for <what>` (with the probe's last error, if it threw) once the bound
 * has passed with one last look.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: EventuallyOptions = {},
): Promise<T> {
  const bound = scaled(opts.within ?? 30_000);
  const end = Date.now() + bound;
  let lastError: unknown;
  for (;;) {
    const last = Date.now() >= end;
    await opts.before?.();
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (last) {
      const why = lastError === undefined ? '' : ` (last look failed: ${(lastError as Error).message ?? String(lastError)})`;
      throw new Error(`timed out after ${bound} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.every ?? 50));
  }
}
