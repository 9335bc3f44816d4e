import type { RetryPolicy } from '../plan/schema.js';

/** Delay before attempt `failures + 1`, in ms: the policy's backoff (defaults 1s, ×2, at most 300s). */
export function retryDelayMs(retry: RetryPolicy | undefined, failures: number): number {
  const initial = retry?.backoff?.initialSeconds ?? 1;
  const factor = retry?.backoff?.factor ?? 2;
  const max = retry?.backoff?.maxSeconds ?? 300;
  return Math.round(Math.min(max, initial * factor ** Math.max(0, failures - 1)) * 1000);
}
