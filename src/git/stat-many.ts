/**
 * `lstat` of many paths, done on worker threads: a survey of a large workspace (workspace-stamps.ts)
 * looks at every directory and tracked file, 20,000 `lstat`s on a 10,000-file tree, 35 to 150 ms of
 * system calls depending on the machine, that would otherwise hold the event loop (and the other items'
 * progress) while they run. A long list is split between {@link POOL_SIZE} threads, so that a survey
 * takes about half as long while the other core is free (the system calls, not JavaScript, are the cost:
 * issue 16's `workspace-scale`). The threads are started on first use, kept, and do not keep the process
 * alive; where one cannot be used, and for a list shorter than {@link THREAD_FROM}, the same calls run here.
 */
import { lstatSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Numbers kept per path, in this order. */
export const STAT_FIELDS = 5;
const [INO, MODE, SIZE, MTIME, CTIME] = [0, 1, 2, 3, 4];

/** The `lstat` data of one path, as {@link statMany} gives it; `null` for a path that does not exist. */
export interface PathStat {
  ino: number;
  mode: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** The data of path `i` out of what {@link statMany} returned. */
export function statAt(values: Float64Array, i: number): PathStat | null {
  const at = i * STAT_FIELDS;
  if (Number.isNaN(values[at + INO]!)) return null;
  return { ino: values[at + INO]!, mode: values[at + MODE]!, size: values[at + SIZE]!, mtimeMs: values[at + MTIME]!, ctimeMs: values[at + CTIME]! };
}

/**
 * Fills `values` with the `lstat` data of `root` joined with each path ('' for `root` itself); NaN where a
 * path does not exist. The same text runs on the thread (as the source of its function) and here.
 */
function fill(root: string, paths: readonly string[], values: Float64Array, lstat: typeof lstatSync): void {
  for (let i = 0; i < paths.length; i += 1) {
    const path = paths[i]!;
    const info = lstat(path === '' ? root : `${root}/${path}`, { throwIfNoEntry: false });
    const at = i * 5;
    if (info === undefined) {
      values[at] = NaN;
      continue;
    }
    values[at] = info.ino;
    values[at + 1] = info.mode;
    values[at + 2] = info.size;
    values[at + 3] = info.mtimeMs;
    values[at + 4] = info.ctimeMs;
  }
}

const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { lstatSync } = require('node:fs');
const fill = ${fill.toString()};
parentPort.on('message', ({ id, root, count, paths }) => {
  const list = count === 0 ? [] : paths.split('\\0');
  const values = new Float64Array(count * 5);
  try {
    if (list.length !== count) throw new Error('asked for ' + count + ' paths, given ' + list.length);
    fill(root, list, values, lstatSync);
    parentPort.postMessage({ id, values }, [values.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: String((e && e.message) || e) });
  }
});
`;

interface Pending {
  resolve: (values: Float64Array) => void;
  reject: (e: Error) => void;
}

/** A running thread and the requests it has not answered. */
interface StatThread {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** Threads a long list is split between: two, or one on a one-core machine. */
const POOL_SIZE = Math.max(1, Math.min(2, availableParallelism()));
/**
 * Lists shorter than this are done here, on the event loop: a few hundred calls (about 1 µs each) cost
 * less than a message to a thread and its answer, each of which waits for a busy event loop (a capture
 * of a small workspace took 1.3 ms on the thread, 0.65 ms here).
 */
export const THREAD_FROM = 256;
/** Lists shorter than this go to one thread: splitting them saves less than a message costs. */
const SPLIT_FROM = 2_000;

const pool: Array<StatThread | null> = Array.from({ length: POOL_SIZE }, () => null);
let broken = false;
let nextId = 0;
let answers = 0;

/** Ends `thread` (if it is still in the pool), failing what it had not answered. */
function retire(thread: StatThread, why: Error, stopUsing: boolean): void {
  const slot = pool.indexOf(thread);
  if (slot >= 0) pool[slot] = null;
  if (stopUsing) broken = true;
  for (const p of thread.pending.values()) p.reject(why);
  thread.pending.clear();
}

/** The pool's thread in `slot`, started if it is not running; null once threads have failed to work here. */
function statThread(slot: number): StatThread | null {
  if (broken) return null;
  const running = pool[slot];
  if (running) return running;
  let worker: Worker;
  try {
    worker = new Worker(THREAD_SOURCE, { eval: true });
  } catch {
    broken = true;
    return null;
  }
  const thread: StatThread = { worker, pending: new Map() };
  worker.unref();
  worker.on('message', (m: { id: number; values?: Float64Array; error?: string }) => {
    const p = thread.pending.get(m.id);
    thread.pending.delete(m.id);
    if (thread.pending.size === 0) worker.unref();
    if (m.values) {
      p?.resolve(m.values);
      return;
    }
    // A path lstat refused (ENOTDIR where a directory became a file): this request is answered here.
    p?.reject(new Error(m.error ?? 'the stat thread gave no answer'));
  });
  worker.on('error', (e) => retire(thread, e, true));
  worker.on('messageerror', (e) => retire(thread, e, true));
  worker.on('exit', () => retire(thread, new Error('the stat thread exited'), false));
  pool[slot] = thread;
  return thread;
}

/** Asks `thread` for the data of `paths`. */
function ask(thread: StatThread, root: string, paths: readonly string[]): Promise<Float64Array> {
  const message = { id: (nextId += 1), root, count: paths.length, paths: paths.join('\0') };
  return new Promise<Float64Array>((resolve, reject) => {
    thread.pending.set(message.id, { resolve, reject });
    try {
      thread.worker.ref();
      thread.worker.postMessage(message);
    } catch (e) {
      thread.pending.delete(message.id);
      if (thread.pending.size === 0) thread.worker.unref();
      reject(e instanceof Error ? e : new Error(String(e)));
    }
  });
}

/** The pool's threads for a list of `count` paths: the least busy one, or all of them for a long list. */
function threadsFor(count: number): StatThread[] | null {
  const slots = count < SPLIT_FROM ? [leastBusySlot()] : pool.map((_, slot) => slot);
  const threads: StatThread[] = [];
  for (const slot of slots) {
    const thread = statThread(slot);
    if (thread === null) return null;
    threads.push(thread);
  }
  return threads;
}

function leastBusySlot(): number {
  let best = 0;
  for (let slot = 1; slot < pool.length; slot += 1) {
    if ((pool[slot]?.pending.size ?? 0) < (pool[best]?.pending.size ?? 0)) best = slot;
  }
  return best;
}

/** `paths` split between `threads` in consecutive parts; the answers joined in the list's order. */
async function askSplit(threads: readonly StatThread[], root: string, paths: readonly string[]): Promise<Float64Array> {
  const part = Math.ceil(paths.length / threads.length);
  const parts = await Promise.all(threads.map((thread, k) => ask(thread, root, paths.slice(k * part, (k + 1) * part))));
  if (parts.length === 1) return parts[0]!;
  const values = new Float64Array(paths.length * STAT_FIELDS);
  parts.forEach((answer, k) => values.set(answer, k * part * STAT_FIELDS));
  return values;
}

/**
 * The `lstat` data of `root` joined with each path, {@link STAT_FIELDS} numbers per path (read them with
 * {@link statAt}). Paths are relative, as git lists them (no `.` or `..`, no doubled slash, no NUL).
 * A list of {@link THREAD_FROM} paths or more is done on the stat threads; a shorter one here, and so is
 * a long one where they cannot be started or one fails.
 */
export async function statMany(root: string, paths: readonly string[]): Promise<Float64Array> {
  const threads = paths.length < THREAD_FROM ? null : threadsFor(paths.length);
  if (threads) {
    try {
      const values = await askSplit(threads, root, paths);
      answers += 1;
      return values;
    } catch {
      // A thread failed; the same calls below.
    }
  }
  const values = new Float64Array(paths.length * STAT_FIELDS);
  fill(root, paths, values, lstatSync);
  return values;
}

/** How many lists the stat threads have answered in this process (a test's view of where the calls ran). */
export function statThreadAnswers(): number {
  return answers;
}

/** How many stat threads are running (a test's view of the split). */
export function statThreadsRunning(): number {
  return pool.filter((thread) => thread !== null).length;
}

/** Stops the stat threads (a test's way to see what happens when they are gone); the next call starts others. */
export async function stopStatThreads(): Promise<void> {
  const running = pool.filter((thread): thread is StatThread => thread !== null);
  pool.fill(null);
  await Promise.all(running.map((thread) => thread.worker.terminate()));
}
