import { tempSuffix } from '../temp-name.js';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TextDecoder } from 'node:util';
import type { LogSink } from './types.js';
import { createRedactor, type Redactor } from './redact.js';

/** Default bound of a worker log: 1 MiB (half head, half tail). */
export const DEFAULT_LOG_MAX_BYTES = 1024 * 1024;

export interface LogSinkOptions {
  /**
   * File to keep the log in. The head is appended as it arrives (so it can be followed); `close()` then
   * replaces the file atomically with the final bounded content. The file is for following the log, not
   * its record: it is not synced (the record is the text `text()` gives, which the caller commits).
   */
  path?: string;
  /** Secret values to redact. */
  secrets: string[];
  /** Upper bound of the kept log in bytes (plus one elision line). Default 1 MiB. */
  maxBytes?: number;
}

type Stream = 'stdout' | 'stderr';

/** A log sink that also gives the log it kept. */
export interface KeptLog extends LogSink {
  /** The kept log (head, elision line, tail): final once `close()` has resolved, and then the file's content. */
  text(): string;
}

/**
 * A bounded, redacting log sink. stdout and stderr are interleaved in arrival order into one log; each
 * stream has its own UTF-8 decoder and its own redactor, so a multibyte character or a secret split
 * across two writes of one stream is still whole (a redactor holds back a few characters until it knows
 * they are not the start of a secret, so text of one stream can appear slightly after the other's).
 *
 * The first half of `maxBytes` is kept verbatim, and a ring of the last half; anything between is
 * replaced by a line `… <N> bytes elided …`.
 */
export function createLogSink(opts: LogSinkOptions): KeptLog {
  const maxBytes = opts.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
  if (!Number.isInteger(maxBytes) || maxBytes < 2) throw new RangeError(`log maxBytes must be an integer ≥ 2, got ${maxBytes}`);
  const store = new BoundedText(Math.ceil(maxBytes / 2), Math.floor(maxBytes / 2));
  const streams: Record<Stream, { decoder: TextDecoder; redactor: Redactor }> = {
    stdout: { decoder: new TextDecoder('utf-8'), redactor: createRedactor(opts.secrets) },
    stderr: { decoder: new TextDecoder('utf-8'), redactor: createRedactor(opts.secrets) },
  };
  const live = opts.path === undefined ? undefined : openLiveFile(opts.path);
  let closing: Promise<void> | undefined;

  function append(text: string): void {
    if (text === '') return;
    const headPart = store.append(text);
    if (live?.fd !== undefined && headPart.length > 0) {
      try {
        writeSync(live.fd, headPart);
      } catch {
        // Following the log live is a convenience; the final content is still written by close().
        closeQuietly(live);
      }
    }
  }

  return {
    write(chunk, stream) {
      if (closing) return;
      const s = streams[stream];
      let text: string;
      if (typeof chunk === 'string') text = s.decoder.decode() + chunk;
      else text = s.decoder.decode(chunk, { stream: true });
      append(s.redactor.push(text));
    },

    tail(max = 4096) {
      return store.tail(max);
    },

    text() {
      return store.render();
    },

    close() {
      closing ??= (async () => {
        for (const s of Object.values(streams)) {
          append(s.redactor.push(s.decoder.decode()));
          append(s.redactor.flush());
        }
        if (live === undefined) return;
        closeQuietly(live);
        await replaceFile(live.path, store.render());
      })();
      return closing;
    },
  };
}

/** Keeps the first `headLimit` bytes and the last `tailLimit` bytes of UTF-8 text appended to it. */
class BoundedText {
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  /** Once text overflowed the head, all later text goes to the tail ring (keeps order). */
  private headFull = false;
  private readonly ring: Buffer[] = [];
  private ringBytes = 0;
  private total = 0;

  constructor(
    private readonly headLimit: number,
    private readonly tailLimit: number,
  ) {}

  /** Appends text; returns the bytes that went into the head (to be written to a live file). */
  append(text: string): Buffer {
    const buf = Buffer.from(text, 'utf8');
    this.total += buf.length;
    let headPart = buf.subarray(0, 0);
    let rest = buf;
    if (!this.headFull) {
      let n = Math.min(this.headLimit - this.headBytes, buf.length);
      if (n < buf.length) {
        while (n > 0 && isContinuationByte(buf[n]!)) n--;
        this.headFull = true;
      }
      headPart = buf.subarray(0, n);
      rest = buf.subarray(n);
      if (n > 0) {
        this.head.push(Buffer.from(headPart));
        this.headBytes += n;
      }
    }
    if (rest.length > 0) this.pushRing(rest);
    return headPart;
  }

  private pushRing(bytes: Buffer): void {
    if (this.tailLimit === 0) return;
    const kept = bytes.length > this.tailLimit ? bytes.subarray(bytes.length - this.tailLimit) : bytes;
    this.ring.push(Buffer.from(kept));
    this.ringBytes += kept.length;
    while (this.ringBytes > this.tailLimit) {
      const first = this.ring[0]!;
      const excess = this.ringBytes - this.tailLimit;
      if (first.length <= excess) {
        this.ring.shift();
        this.ringBytes -= first.length;
      } else {
        this.ring[0] = Buffer.from(first.subarray(excess));
        this.ringBytes -= excess;
      }
    }
  }

  /** Bytes dropped between the head and the ring. */
  private get elided(): number {
    return this.total - this.headBytes - this.ringBytes;
  }

  /** The kept text: head, the elision line when something was dropped, ring. */
  render(): string {
    const head = Buffer.concat(this.head).toString('utf8');
    let ring = Buffer.concat(this.ring);
    if (this.elided === 0) return head + ring.toString('utf8');
    let skipped = 0;
    while (skipped < ring.length && isContinuationByte(ring[skipped]!)) skipped++;
    ring = ring.subarray(skipped);
    const sep = head === '' || head.endsWith('\n') ? '' : '\n';
    return `${head}${sep}… ${this.elided + skipped} bytes elided …\n${ring.toString('utf8')}`;
  }

  /** The last `max` bytes of the kept text (starting at a character boundary). */
  tail(max: number): string {
    let bytes: Buffer;
    if (this.ringBytes >= max) {
      const parts: Buffer[] = [];
      let need = max;
      for (let i = this.ring.length - 1; i >= 0 && need > 0; i--) {
        const b = this.ring[i]!;
        parts.unshift(b.length <= need ? b : b.subarray(b.length - need));
        need -= b.length;
      }
      bytes = Buffer.concat(parts);
    } else {
      const all = Buffer.from(this.render(), 'utf8');
      bytes = all.subarray(Math.max(0, all.length - max));
    }
    let start = 0;
    while (start < bytes.length && isContinuationByte(bytes[start]!)) start++;
    return bytes.subarray(start).toString('utf8');
  }
}

function isContinuationByte(b: number): boolean {
  return (b & 0xc0) === 0x80;
}

interface LiveFile {
  path: string;
  fd?: number;
}

function openLiveFile(path: string): LiveFile {
  mkdirSync(dirname(path), { recursive: true });
  return { path, fd: openSync(path, 'w') };
}

function closeQuietly(live: LiveFile): void {
  if (live.fd === undefined) return;
  try {
    closeSync(live.fd);
  } catch {
    // Already closed or the disk went away: close() still writes the final content.
  }
  live.fd = undefined;
}

/**
 * Writes `text` to a temporary file next to `path` and renames it over `path`: a reader finds the old
 * content or the new, never part of it. Not synced: the log's record is its blob in the run's state.
 */
async function replaceFile(path: string, text: string): Promise<void> {
  const tmp = `${path}.${tempSuffix()}.tmp`;
  try {
    await writeFile(tmp, text, 'utf8');
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
