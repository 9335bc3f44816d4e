import { randomBytes } from 'node:crypto';
import * as core from '@actions/core';

/**
 * The job log for text the job did not write itself: run ids, lease holders, plan paths, error messages,
 * all of them read from the repository. The runner reads any stdout line that starts with `::` as a
 * workflow command (`::add-mask::`, `::error::`, `::stop-commands::`, …), so such text could mask the
 * log, forge annotations or turn the job's own commands off. A message with such a line is printed
 * between `::stop-commands::<token>` and `::<token>::`, with a token nobody can guess, and is shown as
 * written. Warnings and errors go through `@actions/core`, which escapes their text into one command's data.
 */
export const jobLog = {
  info(text: string): void {
    if (!/^\s*::/m.test(text)) return core.info(text);
    const token = `agora${randomBytes(16).toString('hex')}`;
    core.info(`::stop-commands::${token}`);
    core.info(text);
    core.info(`::${token}::`);
  },
  warn: (text: string): void => core.warning(text),
  error: (text: string): void => core.error(text),
};
