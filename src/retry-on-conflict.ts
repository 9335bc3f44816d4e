import { AgoraError } from './errors.js';

/**
 * What an attempt returns when it lost a compare-and-swap to another writer: the value it read is
 * stale, so the whole read-decide-write is done again against the new value.
 */
export const LOST_RACE: unique symbol = Symbol('lost a compare-and-swap');

/** A compare-and-swap lost `tries` times in a row; `subject` is what kept moving (a ref, a run, a lock file). */
export class ContentionError extends AgoraError {
  override readonly name = 'ContentionError';
  constructor(
    readonly subject: string,
    readonly tries: number,
    hint?: string,
  ) {
    super(
      'contended',
      `${subject} kept changing: ${tries} attempts in a row lost to another writer, so nothing was changed`,
      hint ?? 'run the command again; if it keeps happening, find the process that writes it so often',
    );
  }
}

/**
 * Runs `attempt` until it returns something other than {@link LOST_RACE}, at most `tries` times, then
 * throws a {@link ContentionError} naming `subject`. Each attempt must read afresh: a retry against the
 * value that lost would lose again.
 */
export async function retryOnConflict<T>(subject: string, tries: number, attempt: (n: number) => Promise<T | typeof LOST_RACE>, hint?: string): Promise<T> {
  for (let n = 0; n < tries; n += 1) {
    const outcome = await attempt(n);
    if (outcome !== LOST_RACE) return outcome;
  }
  throw new ContentionError(subject, tries, hint);
}
