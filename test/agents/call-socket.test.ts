import { existsSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import {
  callThroughSocket,
  MAX_BUFFERED_BYTES,
  MAX_CALLS,
  MAX_CONNECTIONS,
  MAX_REQUEST_BYTES,
  openCallSocket,
  type CallAnswer,
  type CallRequest,
  type CallSocket,
} from '../../src/agents/call-socket.js';

/** The call socket's protocol on its own: one JSON line in, one out; what is not a request is refused, not run. */

const handled: CallRequest[] = [];
let socket: CallSocket;

beforeAll(async () => {
  socket = await openCallSocket(async (request) => {
    handled.push(request);
    return { ok: true, content: `ran ${request.subagent}`, child: 'x.1/y#1' };
  });
});

afterAll(async () => {
  await socket?.close();
});

/** Sends raw bytes and reads whatever comes back until the server closes. */
function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket.path);
    let got = '';
    c.setEncoding('utf8');
    c.on('connect', () => c.write(text));
    c.on('data', (d: string) => (got += d));
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
}

describe('the call socket', () => {
  it('close() waits for a call whose worker hung up before the answer, so nothing of it runs after the attempt', async () => {
    let finish!: () => void;
    const started = new Promise<void>((resolveStarted) => {
      void openCallSocket(async () => {
        resolveStarted();
        await new Promise<void>((r) => (finish = r));
        ended = true;
        return { ok: true, content: 'late' };
      }).then((s) => (own = s));
    });
    let own: CallSocket | undefined;
    let ended = false;
    await new Promise<void>((r) => setImmediate(r));
    while (!own) await new Promise<void>((r) => setImmediate(r));
    const c = createConnection(own.path);
    c.on('error', () => {});
    c.on('connect', () => c.write(`${JSON.stringify({ subagent: 'slow', input: {} })}\n`));
    await started;
    c.destroy(); // the worker exits without waiting for its answer
    await new Promise<void>((r) => c.on('close', () => r()));
    let closed = false;
    const closing = own.close().then(() => (closed = true));
    await new Promise<void>((r) => setTimeout(r, 500)); // a close that did not wait would be done by now (with the fix this cannot flake: it waits for finish())
    expect(closed).toBe(false);
    finish();
    await closing;
    expect(ended).toBe(true);
  });
  it('answers a request with what the orchestrator decided', async () => {
    expect(await callThroughSocket(socket.path, { subagent: 'checker', input: { path: 'a' } })).toEqual({ ok: true, content: 'ran checker', child: 'x.1/y#1' });
    expect(handled).toEqual([{ subagent: 'checker', input: { path: 'a' } }]);
  });

  it('refuses a line that is not JSON, or names no subagent, without running anything', async () => {
    handled.length = 0;
    expect(JSON.parse(await raw('not json\n'))).toEqual({
      ok: false,
      content: 'refused: a call request is one line of JSON: {"subagent": "<name>", "input": {…}}',
    });
    expect(JSON.parse(await raw('{"input": {}}\n'))).toEqual({
      ok: false,
      content: 'refused: a call request names its subagent: {"subagent": "<name>", "input": {…}}',
    });
    expect(JSON.parse(await raw(`${'x'.repeat(1024 * 1024 + 1)}`))).toEqual({ ok: false, content: 'refused: a call request is limited to 1048576 bytes' });
    expect(handled).toEqual([]);
  });

  it('lives in a directory only its user can enter, removed when closed', async () => {
    const other = await openCallSocket(async () => ({ ok: true, content: '' }));
    expect(existsSync(other.path)).toBe(true);
    expect(statSync(dirname(other.path)).mode & 0o777).toBe(0o700);
    await other.close();
    expect(existsSync(dirname(other.path))).toBe(false);
  });
});

/** A connection to `path` that keeps what comes back; `closed` is set once the server ends or drops it (`answer` undefined: dropped unanswered). */
function connect(path: string) {
  const c = createConnection(path);
  let got = '';
  c.setEncoding('utf8');
  c.on('data', (d: string) => (got += d));
  c.on('error', () => {});
  const state: { connected: boolean; closed?: { answer: CallAnswer | undefined } } = { connected: false };
  c.on('connect', () => (state.connected = true));
  c.on('close', () => (state.closed = { answer: got === '' ? undefined : (JSON.parse(got) as CallAnswer) }));
  return { c, state };
}

/** What the connection was answered, once the server has closed it. */
async function answerOf(what: string, h: ReturnType<typeof connect>): Promise<CallAnswer | undefined> {
  return (await eventually(what, () => h.state.closed, { within: 10_000 })).answer;
}

describe("the call socket's limits: what a worker sends cannot grow the orchestrator's memory", () => {
  /** Run after each test, passed or not, so that a socket a failed test left open cannot hold the run. */
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it(`holds at most ${MAX_BUFFERED_BYTES} bytes of unfinished requests and serves ${MAX_CONNECTIONS} connections at a time; past either, a refusal, and close() drops the rest`, async () => {
    const own = await openCallSocket(() => Promise.reject(new Error('no request is whole')));
    cleanups.push(() => own.close());
    const holds = (what: string, probe: () => boolean) => eventually(what, probe, { within: 10_000 });
    // Four connections each send a request of the largest size, with no newline: all of it is held.
    const held = Array.from({ length: MAX_BUFFERED_BYTES / MAX_REQUEST_BYTES }, () => connect(own.path));
    for (const h of held) {
      await holds('a connection', () => h.state.connected);
      h.c.write('a'.repeat(MAX_REQUEST_BYTES));
    }
    await holds('the four requests held', () => own.load().bufferedBytes === MAX_BUFFERED_BYTES);
    // One byte more, on another connection, is refused, and that connection dropped.
    const over = connect(own.path);
    await holds('a connection', () => over.state.connected);
    over.c.write('{');
    expect(await answerOf('the answer to the byte past the cap', over)).toEqual({
      ok: false,
      content: `refused: the call socket holds ${MAX_BUFFERED_BYTES} bytes of unfinished requests at most; send one request at a time`,
    });
    expect(own.load().bufferedBytes).toBe(MAX_BUFFERED_BYTES);
    // Connections up to the limit are served (these send nothing yet); the next is refused at once.
    await holds('the refused connection gone', () => own.load().connections === held.length);
    const idle = Array.from({ length: MAX_CONNECTIONS - held.length }, () => connect(own.path));
    await holds('every connection served', () => own.load().connections === MAX_CONNECTIONS);
    expect(await answerOf('the answer to a connection past the limit', connect(own.path))).toEqual({
      ok: false,
      content: `refused: the call socket serves ${MAX_CONNECTIONS} connections at a time; wait for an answer before calling again`,
    });
    // The attempt ends: the requests never finished are dropped, unanswered, and nothing is held.
    await cleanups.pop()!();
    for (const h of [...held, ...idle]) expect(await answerOf('the connection dropped', h)).toBeUndefined();
    expect(own.load()).toEqual({ connections: 0, bufferedBytes: 0, calls: 0 });
  });

  it(`runs at most ${MAX_CALLS} calls at once, counting those whose worker hung up; the next is refused until one ends`, async () => {
    const release: Array<() => void> = [];
    const own = await openCallSocket(
      (request) => new Promise<CallAnswer>((resolve) => release.push(() => resolve({ ok: true, content: `ran ${request.subagent}` }))),
    );
    cleanups.push(async () => {
      release.splice(0).forEach((r) => r());
      await own.close();
    });
    // Each worker sends its call and hangs up: the call goes on, and counts.
    for (let i = 0; i < MAX_CALLS; i++) {
      const h = connect(own.path);
      await eventually('a connection', () => h.state.connected, { within: 10_000 });
      h.c.end(`${JSON.stringify({ subagent: `s${i}`, input: {} })}\n`);
    }
    await eventually('every call running, every worker gone', () => own.load().calls === MAX_CALLS && own.load().connections === 0, { within: 10_000 });
    const oneMore = connect(own.path);
    oneMore.c.on('connect', () => oneMore.c.write(`${JSON.stringify({ subagent: 'one-more', input: {} })}\n`));
    expect(await answerOf('the answer to one call more', oneMore)).toEqual({
      ok: false,
      content: `refused: ${MAX_CALLS} calls of this attempt are running or waiting for their turn; wait for one to answer before calling again`,
    });
    release.shift()!();
    await eventually('one call ended', () => own.load().calls === MAX_CALLS - 1, { within: 10_000 });
    const next = callThroughSocket(own.path, { subagent: 'next', input: {} });
    await eventually('the next call running', () => release.length === MAX_CALLS, { within: 10_000 });
    release.splice(0).forEach((r) => r());
    expect(await next).toEqual({ ok: true, content: 'ran next' });
  });
});
