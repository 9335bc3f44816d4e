import { randomBytes } from 'node:crypto';
import * as core from '@actions/core';

/**
 * The job log for text the job did not write itself: run ids, lease holders, plan paths, error messages,
 * an item's own output, all of them from the repository. The runner reads a stdout line as a workflow
 * command (`::add-mask::`, `::error::`, `::stop-commands::`, …) when it starts with `::` after white
 * space (.NET's, which holds U+0085), and also, in the legacy form, when `##[` appears anywhere in it
 * (`##[add-mask]…`). Such text could mask the log, forge annotations or turn the job's own commands off.
 * A message that holds either is printed between `::stop-commands::<token>` and `::<token>::`, with a
 * token nobody can guess, and is shown as written. Warnings and errors go through `@actions/core`, which
 * escapes their text into one command's data.
 */
export const jobLog = {
  info(text: string): void {
    if (!mayHoldCommand(text)) return core.info(text);
    const token = `agora${randomBytes(16).toString('hex')}`;
    core.info(`::stop-commands::${token}`);
    core.info(text);
    core.info(`::${token}::`);
  },
  warn: (text: string): void => core.warning(text),
  error: (text: string): void => core.error(text),
};

/** True when the runner might read a line of `text` as a command (see {@link jobLog}); false only when it cannot. */
function mayHoldCommand(text: string): boolean {
  return text.includes('##[') || /^[\s\u0085]*::/m.test(text);
}
