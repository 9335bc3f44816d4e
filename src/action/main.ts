import * as core from '@actions/core';
import { isAgoraError } from '../errors.js';
import { readMode } from './inputs.js';
import { runMode } from './run.js';
import { verifyMode } from './verify.js';
import { workerMode } from './worker.js';

/**
 * The Agora Action's entry point (bundled into action/dist/index.js by scripts/build-action.ts): reads
 * `mode` and hands over to it. A problem a user can fix fails the job with its message and hint, no stack.
 */
async function main(): Promise<void> {
  const mode = readMode();
  if (mode === 'verify') return verifyMode();
  if (mode === 'run') return runMode();
  return workerMode();
}

main().catch((e: unknown) => {
  if (isAgoraError(e)) core.setFailed(e.hint ? `${e.message}\n${e.hint}` : e.message);
  else core.setFailed(e instanceof Error ? (e.stack ?? e.message) : String(e));
});
