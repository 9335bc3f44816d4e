import { randomBytes } from 'node:crypto';

/** Drawn once: tells this process's temporary names apart from those of an earlier process with the same pid. */
const processToken = randomBytes(4).toString('hex');
let counter = 0;

/**
 * A suffix for a temporary file name that no other live writer uses: the pid, a token drawn once per
 * process and a counter (drawing random bytes for every name cost more than writing a small object).
 * Callers still create the file exclusively (`wx`) wherever a leftover could be in the way. atomic-write.ts's
 * `atomicTempOf` reads the pid back from a name.
 */
export function tempSuffix(): string {
  counter += 1;
  return `${processTempTag()}_${counter}`;
}

/**
 * The source of a regular expression that matches a suffix {@link tempSuffix} makes, whoever made it: its
 * pid (group 1, a number without a leading zero) and its token (group 2), then the counter. For those who
 * read the writer back from a name (atomic-write.ts, git/ref-temp-sweep.ts).
 */
export const TEMP_SUFFIX_PATTERN = '([1-9]\\d{0,9})_([0-9a-f]{8})_\\d+';

/** What every temporary name of this process starts its suffix with: `<pid>_<token>`. */
export function processTempTag(): string {
  return `${process.pid}_${processToken}`;
}
