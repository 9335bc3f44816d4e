import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { pipeToLog } from '../../src/executors/docker-engine.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { WorkerJob } from '../../src/executors/types.js';
import { BUSYBOX, connectEngine } from './engine.js';

/**
 * A container's output reaches the attempt's log whole, even when the attach stream ends (or is cut)
 * before it brought everything, as a busy engine's can: the log is completed from the engine's record,
 * and nothing the stream did bring is written twice. The container is real; the attach stream is one
 * this test controls, standing for one that lost its last bytes.
 */
const docker = await connectEngine();
const containers: Docker.Container[] = [];
afterEach(async () => {
  while (containers.length) await containers.pop()!.remove({ force: true });
});

const SCRIPT = 'printf "out one\\n"; printf "err one\\n" >&2; printf "out two, no newline"; printf "err two\\n" >&2';

/** A container that ran SCRIPT to its end. */
async function exited(d: Docker): Promise<Docker.Container> {
  const c = await d.createContainer({ Image: BUSYBOX, Cmd: ['/bin/sh', '-c', SCRIPT], Tty: false, NetworkDisabled: true });
  containers.push(c);
  await c.start();
  await c.wait();
  return c;
}

/** One frame of a non-TTY container's multiplexed output, as an attach stream carries it. */
function frame(stream: 'stdout' | 'stderr', text: string): Buffer {
  const data = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream === 'stdout' ? 1 : 2;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

function jobWithLog(): { job: WorkerJob; streams: () => Record<'stdout' | 'stderr', string> } {
  const log = createLogSink({ secrets: [] });
  const seen = { stdout: '', stderr: '' };
  const job = {
    log: {
      write: (chunk: Buffer | string, stream: 'stdout' | 'stderr') => {
        seen[stream] += Buffer.from(chunk).toString('utf8');
        log.write(chunk, stream);
      },
      close: () => log.close(),
      tail: (n?: number) => log.tail(n),
    },
  } as unknown as WorkerJob;
  return { job, streams: () => seen };
}

describe.skipIf(docker === undefined)("a container's output in the attempt's log", () => {
  const d = docker!;

  it('a stream that ended having brought nothing: everything comes from the engine’s record', async () => {
    const c = await exited(d);
    const { job, streams } = jobWithLog();
    const attach = new PassThrough();
    const output = pipeToLog(d, attach, job);
    attach.end();
    await output.ended;
    await output.complete(c);
    expect(streams()).toEqual({ stdout: 'out one\nout two, no newline', stderr: 'err one\nerr two\n' });
  });

  it('a stream cut part way: only what it had not brought is added, each byte once', async () => {
    const c = await exited(d);
    const { job, streams } = jobWithLog();
    const attach = new PassThrough();
    const output = pipeToLog(d, attach, job);
    // It brought the first line of each stream and half of a later one, then was cut.
    attach.write(frame('stdout', 'out one\n'));
    attach.write(frame('stderr', 'err one\n'));
    attach.write(frame('stdout', 'out two'));
    attach.destroy();
    await output.ended;
    await output.complete(c);
    expect(streams()).toEqual({ stdout: 'out one\nout two, no newline', stderr: 'err one\nerr two\n' });
    // The log holds each byte once, in the order the engine recorded them.
    expect(job.log.tail()).toBe('out one\nerr one\nout two, no newlineerr two\n');
  });
});
