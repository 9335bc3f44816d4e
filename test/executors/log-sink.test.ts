import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogSink } from '../../src/executors/log-sink.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agora-log-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const enc = new TextEncoder();

describe('createLogSink', () => {
  it('interleaves both streams and redacts secrets split across writes of one stream', async () => {
    const path = join(dir, 'logs', 'a.1.log');
    const log = createLogSink({ path, secrets: ['sk-live-0123456789'] });
    log.write('start sk-live-01', 'stdout');
    log.write(enc.encode('warning\n'), 'stderr');
    log.write(enc.encode('23456789 end\n'), 'stdout');
    await log.close();
    const text = await readFile(path, 'utf8');
    expect(text).not.toContain('sk-live');
    expect(text).not.toContain('23456789');
    // stdout's unfinished 'sk-live-01' was held back while stderr's line went through.
    expect(text).toBe('start warning\n*** end\n');
    expect(log.tail()).toBe(text);
  });

  it('decodes multibyte characters split across chunks', async () => {
    const log = createLogSink({ secrets: [] });
    const bytes = enc.encode('héllo → 世界 😀\n');
    for (let i = 0; i < bytes.length; i++) log.write(bytes.subarray(i, i + 1), 'stdout');
    await log.close();
    expect(log.tail()).toBe('héllo → 世界 😀\n');
  });

  it('writes the head to the file while the worker runs, and the final content atomically on close', async () => {
    const path = join(dir, 'live.log');
    const log = createLogSink({ path, secrets: ['topsecret'], maxBytes: 100 });
    log.write('line one\n', 'stdout');
    expect(await readFile(path, 'utf8')).toBe('line one\n');
    log.write('top', 'stdout');
    // Held back: could be the start of a secret until more arrives.
    expect(await readFile(path, 'utf8')).toBe('line one\n');
    log.write('secret\n', 'stdout');
    expect(await readFile(path, 'utf8')).toBe('line one\n***\n');
    for (let i = 0; i < 50; i++) log.write(`row ${i}\n`, 'stdout');
    await log.close();
    const final = await readFile(path, 'utf8');
    expect(final).toMatch(/^line one\n\*\*\*\n/);
    expect(final).toMatch(/\n… \d+ bytes elided …\n/);
    expect(final.endsWith('row 49\n')).toBe(true);
    // What the caller commits is what the file holds.
    expect(log.text()).toBe(final);
    // No temporary files are left next to the log.
    expect(await readdir(dir)).toEqual(['live.log']);
  });

  it('keeps 5 MB of output bounded: the head, an elision line with the exact count, the tail', async () => {
    const path = join(dir, 'big.log');
    const maxBytes = 64 * 1024;
    const log = createLogSink({ path, secrets: ['SECRETVALUE'], maxBytes });
    let written = 0;
    let n = 0;
    while (written < 5 * 1024 * 1024) {
      const line = `line ${String(n++).padStart(7, '0')} SECRETVALUE ${'x'.repeat(40)}\n`;
      log.write(enc.encode(line), n % 3 === 0 ? 'stderr' : 'stdout');
      written += line.length;
    }
    await log.close();
    const text = await readFile(path, 'utf8');
    const redactedLine = `line 0000000 *** ${'x'.repeat(40)}\n`;
    const totalRedacted = n * redactedLine.length;
    const match = /\n… (\d+) bytes elided …\n/.exec(text);
    expect(match).not.toBeNull();
    const elided = Number(match![1]);
    const kept = Buffer.byteLength(text) - Buffer.byteLength(match![0]) + 1; // the elision line added one '\n' before it
    expect(kept).toBeLessThanOrEqual(maxBytes + 1);
    expect(kept + elided).toBe(totalRedacted + 1);
    expect(text.startsWith('line 0000000 *** ')).toBe(true);
    expect(text).not.toContain('SECRETVALUE');
    expect(text.endsWith(`line ${String(n - 1).padStart(7, '0')} *** ${'x'.repeat(40)}\n`)).toBe(true);
    expect(log.tail(100).length).toBeLessThanOrEqual(100);
    expect(text.endsWith(log.tail(100))).toBe(true);
    expect(log.text()).toBe(text);
  });

  it('tail returns the last bytes of the redacted log without splitting a character', async () => {
    const log = createLogSink({ secrets: ['password'], maxBytes: 1000 });
    log.write('password=password\n', 'stdout');
    log.write('ü'.repeat(10), 'stdout');
    await log.close();
    expect(log.tail()).toBe('***=***\n' + 'ü'.repeat(10));
    // 'ü' is 2 bytes: 5 bytes hold 2 whole characters.
    expect(log.tail(5)).toBe('üü');
  });

  it('close is idempotent and later writes are ignored', async () => {
    const path = join(dir, 'x.log');
    const log = createLogSink({ path, secrets: [] });
    log.write('a\n', 'stdout');
    await Promise.all([log.close(), log.close()]);
    log.write('late\n', 'stdout');
    await log.close();
    expect(await readFile(path, 'utf8')).toBe('a\n');
  });
});
