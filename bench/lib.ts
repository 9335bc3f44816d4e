import { performance } from 'node:perf_hooks';

/** Small helpers shared by the benchmarks: timing, medians, one JSON line per result. */

export function timeIt<T>(fn: () => T): { value: T; ms: number } {
  const start = performance.now();
  const value = fn();
  return { value, ms: performance.now() - start };
}

export async function timeAsync<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

export function report<T extends Record<string, unknown>>(name: string, result: T): T & { bench: string } {
  const line = { bench: name, ...result };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  return line;
}
