/**
 * The reason a process aborts its workers with when it stops for another to take its runs over (a graceful
 * stop of the App: a deploy, a scale-down), as opposed to stopping the work. A target that can re-attach
 * to a worker from another process (`WorkerTarget.handsOver`) then leaves the worker going and returns at
 * once; the next process finds it with `canResume` and collects its result. Any other abort stops it.
 */
export class HandOver {
  constructor(readonly why: string) {}

  toString(): string {
    return this.why;
  }
}

/** Whether `signal` was aborted to hand the worker over to another process. */
export function handingOver(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof HandOver;
}
