/**
 * A gate a worker waits at until the test opens it: for tests that must do something while a worker is
 * running (kill the server, press a button), however slow the machine. `wait` is a shell snippet that
 * returns once the gate is open; a worker started after `open()` passes straight through.
 */
import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface WorkerGate {
  /** Shell: loops until the gate is open. */
  readonly wait: string;
  open(): Promise<void>;
  /** Removes the gate's file (after the test). */
  remove(): Promise<void>;
}

export function workerGate(): WorkerGate {
  const file = join(tmpdir(), `agora-gate-${randomUUID()}`);
  return {
    wait: `while [ ! -e ${file} ]; do sleep 0.1; done`,
    open: () => writeFile(file, ''),
    remove: () => rm(file, { force: true }),
  };
}
