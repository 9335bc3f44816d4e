import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { containerName, createDockerTarget, DEFAULT_SCOPE, LABEL_MANAGED, LABEL_SCOPE, parseMemory } from '../../src/executors/docker-target.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { LogSink, WorkerJob } from '../../src/executors/types.js';
import { eventually } from '../support/eventually.js';
import { connectEngine, containerGate, DEFAULT_ENGINE, makeJob, managedContainers, NODE, tempDir, uniqueRunId } from './engine.js';

const docker = await connectEngine();
const RUN_PREFIX = `dt${process.pid}`;
const engineSocket = (process.env.DOCKER_HOST ?? DEFAULT_ENGINE).replace(/^unix:\/\//, '');

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function workspace(files: Record<string, string> = {}): Promise<string> {
  const t = await tempDir('agora-docker-ws-');
  cleanups.push(t.cleanup);
  for (const [rel, body] of Object.entries(files)) {
    await mkdir(join(t.dir, rel, '..'), { recursive: true });
    await writeFile(join(t.dir, rel), body);
  }
  return t.dir;
}

function runId(name: string): string {
  return uniqueRunId(`${RUN_PREFIX}-${name}`);
}

/** Resolves once a container of `run` is running (the worker has started). */
async function untilRunning(d: Docker, run: string): Promise<Docker.ContainerInfo> {
  return eventually(
    `a running container for ${run}`,
    async () => (await d.listContainers({ filters: { label: [`agora.run=${run}`], status: ['running'] } }))[0],
  );
}

/** A log sink that also records which stream each chunk came from. */
function recordingSink(secrets: string[]): LogSink & { chunks: Array<[string, string]> } {
  const inner = createLogSink({ secrets });
  const chunks: Array<[string, string]> = [];
  return {
    chunks,
    write(chunk, stream) {
      chunks.push([stream, Buffer.from(chunk).toString('utf8')]);
      inner.write(chunk, stream);
    },
    close: () => inner.close(),
    tail: (n) => inner.tail(n),
  };
}

/**
 * A unix socket that forwards to the real engine until `cut()`: then every connection is dropped and
 * the socket is gone, as when the engine (or the orchestrator's view of it) dies mid-run.
 */
async function engineProxy(): Promise<{ docker: Docker; path: string; cut: () => Promise<void> }> {
  const path = join(tmpdir(), `agora-engine-proxy-${process.pid}-${Date.now()}.sock`);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(engineSocket);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const cut = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(path, { force: true });
  };
  cleanups.push(() => (server.listening ? cut() : Promise.resolve()));
  return { docker: new Docker({ socketPath: path }), path, cut };
}

describe.skipIf(docker === undefined)('docker target on a real engine', () => {
  const d = docker!;
  const target = createDockerTarget({ docker: d, stopGraceSeconds: 1 });
  const never = new AbortController().signal;

  afterAll(async () => {
    if (!docker) return;
    // Nothing this suite started may outlive it.
    const left = (await managedContainers(d)).filter((c) => c.Labels?.['agora.run']?.startsWith(RUN_PREFIX));
    expect(left.map((c) => c.Names)).toEqual([]);
  });

  it('fans out three containers in parallel, each editing its own workspace', async () => {
    const run = runId('fanout');
    const jobs = await Promise.all(
      [1, 2, 3].map(async (n) => {
        const dir = await workspace({ 'edit.txt': `original ${n}\n`, 'gone.txt': 'delete me\n', 'keep/same.txt': 'same\n' });
        return makeJob({
          runId: run,
          itemId: `item${n}`,
          workspaceDir: dir,
          command: [
            '/bin/sh',
            '-c',
            `echo "edited by $AGORA_ITEM" >> edit.txt && rm gone.txt && mkdir -p new/deeper && echo n=${n} > new/deeper/file.txt && pwd`,
          ],
        });
      }),
    );
    const results = await Promise.all(jobs.map((job) => target.run(job, never)));
    expect(results).toEqual([0, 1, 2].map(() => ({ exitCode: 0, signal: null })));
    for (const [i, job] of jobs.entries()) {
      const n = i + 1;
      expect(await readFile(join(job.workspaceDir, 'edit.txt'), 'utf8')).toBe(`original ${n}\nedited by item${n}\n`);
      expect(await readFile(join(job.workspaceDir, 'new/deeper/file.txt'), 'utf8')).toBe(`n=${n}\n`);
      expect(existsSync(join(job.workspaceDir, 'gone.txt'))).toBe(false);
      expect((await readdir(job.workspaceDir)).sort()).toEqual(['edit.txt', 'keep', 'new']);
      expect(job.log.tail()).toBe('/workspace\n');
    }
    expect(await managedContainers(d, run)).toEqual([]);
  });

  it('runs as nobody on a read-only root with only /workspace and /tmp writable; stdin and both streams arrive', async () => {
    const dir = await workspace({ 'in.txt': 'x' });
    const log = recordingSink([]);
    const job = makeJob({
      runId: runId('isolation'),
      itemId: 'iso',
      workspaceDir: dir,
      stdin: 'line from stdin\n',
      log,
      command: [
        '/bin/sh',
        '-c',
        [
          'echo "uid=$(id -u) gid=$(id -g)"',
          'read -r line; echo "stdin: $line"',
          'if touch /rootfile 2>/dev/null; then echo "root: writable"; else echo "root: read-only"; fi',
          'if echo t > /tmp/t; then echo "tmp: writable"; fi',
          'echo w > /workspace/written.txt && echo "workspace: writable"',
          'echo "env: $AGORA_RUN $AGORA_ITEM $AGORA_ATTEMPT $AGORA_WORKSPACE"',
          'grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status',
          'echo to-stderr >&2',
        ].join('; '),
      ],
    });
    expect(await target.run(job, never)).toEqual({ exitCode: 0, signal: null });
    const stdout = log.chunks
      .filter(([s]) => s === 'stdout')
      .map(([, t]) => t)
      .join('');
    const stderr = log.chunks
      .filter(([s]) => s === 'stderr')
      .map(([, t]) => t)
      .join('');
    expect(stdout).toBe(
      'uid=65534 gid=65534\nstdin: line from stdin\nroot: read-only\ntmp: writable\nworkspace: writable\n' +
        `env: ${job.runId} iso 1 /workspace\n` +
        // CapDrop ALL empties even the bounding set; no-new-privileges is set.
        'CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nNoNewPrivs:\t1\n',
    );
    expect(stderr).toBe('to-stderr\n');
    expect(await readFile(join(dir, 'written.txt'), 'utf8')).toBe('w\n');
  });

  it('hands the worker $AGORA_PARAMS and $AGORA_EMIT in a volume of their own, and copies the emitted items.json out', async () => {
    const dir = await workspace({ 'in.txt': 'x' });
    const host = await tempDir('agora-docker-control-');
    cleanups.push(host.cleanup);
    const paramsFile = join(host.dir, 'params.json');
    await writeFile(paramsFile, '{"region":"eu","shards":3}', { mode: 0o600 });
    const emitDir = join(host.dir, 'emit');
    await mkdir(emitDir);
    const job = makeJob({
      runId: runId('control'),
      itemId: 'ctl',
      workspaceDir: dir,
      paramsFile,
      emitDir,
      // The host's paths in env mean nothing in the container: the target points the variables at its own.
      env: { AGORA_PARAMS: paramsFile, AGORA_EMIT: emitDir },
      command: [
        '/bin/sh',
        '-c',
        [
          'echo "$AGORA_PARAMS $AGORA_EMIT"',
          'cat "$AGORA_PARAMS" > seen.json',
          'stat -c "%a %u" "$AGORA_PARAMS" "$AGORA_EMIT"',
          'if { echo x >> "$AGORA_PARAMS"; } 2>/dev/null; then echo "params: writable"; else echo "params: read-only"; fi',
          'echo \'{"items":[]}\' > "$AGORA_EMIT/items.json"',
          'echo stray > "$AGORA_EMIT/other.txt"',
        ].join('; '),
      ],
    });
    expect(await target.run(job, never)).toEqual({ exitCode: 0, signal: null });
    expect(job.log.tail()).toBe('/agora/params.json /agora/emit\n400 65534\n700 65534\nparams: read-only\n');
    expect(await readFile(join(dir, 'seen.json'), 'utf8')).toBe('{"region":"eu","shards":3}');
    // Only the control file the engine reads comes out; nothing of /agora is in the workspace.
    expect(await readdir(emitDir)).toEqual(['items.json']);
    expect(await readFile(join(emitDir, 'items.json'), 'utf8')).toBe('{"items":[]}\n');
    expect((await readdir(dir)).sort()).toEqual(['in.txt', 'seen.json']);
    expect(await managedContainers(d, job.runId)).toEqual([]);
  });

  it('copies an emitted items.json over the limit by its size alone, and one that is a directory as a directory', async () => {
    const results: Array<{ isFile: boolean; size: number }> = [];
    for (const [name, script] of [
      ['big', 'head -c 1048577 /dev/zero > "$AGORA_EMIT/items.json"'],
      ['dir', 'mkdir "$AGORA_EMIT/items.json" && echo x > "$AGORA_EMIT/items.json/inner"'],
      ['none', 'true'],
    ] as const) {
      const host = await tempDir('agora-docker-emit-');
      cleanups.push(host.cleanup);
      const job = makeJob({
        runId: runId(`emit-${name}`),
        itemId: name,
        workspaceDir: await workspace(),
        emitDir: host.dir,
        command: ['/bin/sh', '-c', script],
      });
      expect(await target.run(job, never)).toEqual({ exitCode: 0, signal: null });
      const names = await readdir(host.dir);
      if (name === 'none') expect(names).toEqual([]);
      else {
        expect(names).toEqual(['items.json']);
        const st = await lstat(join(host.dir, 'items.json'));
        results.push({ isFile: st.isFile(), size: st.isFile() ? st.size : -1 });
        if (st.isDirectory()) expect(await readdir(join(host.dir, 'items.json'))).toEqual([]);
      }
    }
    expect(results).toEqual([
      { isFile: true, size: 1048577 },
      { isFile: false, size: -1 },
    ]);
  });

  it('has no network: a connection to the internet or to the host fails fast', async () => {
    const hostIp = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    // A server on the host, reachable from any container with a network.
    const server = createServer((s) => s.end('hello\n'));
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    const probe = (host: string, p: number) =>
      `await new Promise(r=>{const s=require('net').connect(${p},'${host}');s.setTimeout(3000);` +
      `s.on('connect',()=>{console.log('${host} connected');r()});s.on('error',e=>{console.log('${host} '+e.code);r()});` +
      `s.on('timeout',()=>{console.log('${host} timeout');s.destroy();r()})});`;
    const script = `(async()=>{${probe('1.1.1.1', 53)}${hostIp ? probe(hostIp, port) : ''}})()`;
    const job = makeJob({ runId: runId('net'), itemId: 'net', workspaceDir: await workspace(), options: { image: NODE }, command: ['node', '-e', script] });
    expect(await target.run(job, never)).toEqual({ exitCode: 0, signal: null });
    const lines = job.log.tail().trim().split('\n');
    expect(lines).toHaveLength(hostIp ? 2 : 1);
    // Refused or unreachable at once, not timed out (the probe says `timeout` after 3 s).
    for (const line of lines) expect(line).toMatch(/ (ENETUNREACH|EHOSTUNREACH|ECONNREFUSED)$/);
  });

  it('kills a worker over its memory limit and says so (exit 137 under a limit)', async () => {
    const job = makeJob({
      runId: runId('oom'),
      itemId: 'hog',
      workspaceDir: await workspace(),
      options: { image: NODE, memory: '64m' },
      command: ['node', '-e', 'const a=[];for(;;){a.push(Buffer.alloc(8*1024*1024,1))}'],
    });
    expect(await target.run(job, never)).toEqual({ exitCode: 137, signal: 'SIGKILL', reason: 'out of memory (exit 137, memory limit 64m)' });
    expect(await managedContainers(d, job.runId)).toEqual([]);
  });

  it('a timeout (abort) stops the container, collects the workspace and removes it', async () => {
    const run = runId('timeout');
    const job = makeJob({
      runId: run,
      itemId: 'slow',
      workspaceDir: await workspace(),
      command: ['/bin/sh', '-c', 'echo before > before.txt; echo started; sleep 600'],
    });
    const ac = new AbortController();
    const pending = target.run(job, ac.signal);
    cleanups.push(() => pending.then(() => undefined));
    await untilRunning(d, run);
    ac.abort(new Error('timed out after 1s'));
    const result = await pending; // settles at all: the 10-minute sleep was stopped
    // PID 1 ignores SIGTERM without a handler: the stop escalates to SIGKILL after the 1 s grace.
    expect(result).toEqual({ exitCode: null, signal: 'SIGKILL', reason: 'stopped: timed out after 1s' });
    expect(await readFile(join(job.workspaceDir, 'before.txt'), 'utf8')).toBe('before\n');
    expect(job.log.tail()).toBe('started\n');
    expect(await managedContainers(d, run)).toEqual([]);
  });

  it('a cancel mid-run sends SIGTERM first: a worker that handles it finishes cleanly', async () => {
    const run = runId('cancel');
    const job = makeJob({
      runId: run,
      itemId: 'polite',
      workspaceDir: await workspace(),
      command: ['/bin/sh', '-c', 'trap "echo cleaned > cleanup.txt; echo got TERM; exit 0" TERM; echo waiting; sleep 60 & wait'],
    });
    const ac = new AbortController();
    const pending = target.run(job, ac.signal);
    cleanups.push(() => pending.then(() => undefined));
    await untilRunning(d, run);
    await eventually('the shell to install its trap (it says "waiting" after)', () => job.log.tail().includes('waiting'));
    ac.abort('cancelled by user');
    expect(await pending).toEqual({ exitCode: 0, signal: null, reason: 'stopped: cancelled by user' });
    expect(await readFile(join(job.workspaceDir, 'cleanup.txt'), 'utf8')).toBe('cleaned\n');
    expect(job.log.tail()).toBe('waiting\ngot TERM\n');
    expect(await managedContainers(d, run)).toEqual([]);
  });

  it('an abort before the start creates nothing', async () => {
    const ac = new AbortController();
    ac.abort('cancelled');
    const job = makeJob({ runId: runId('preabort'), itemId: 'x', workspaceDir: await workspace(), command: ['true'] });
    expect(await target.run(job, ac.signal)).toEqual({ exitCode: null, reason: 'stopped: cancelled' });
    expect(await managedContainers(d, job.runId)).toEqual([]);
  });

  it('after the engine connection dies mid-run, a new target resumes the running container and collects it', async () => {
    const run = runId('resume-running');
    const proxy = await engineProxy();
    const dir = await workspace({ 'a.txt': 'a\n' });
    const gate = containerGate(d, run);
    const command = ['/bin/sh', '-c', `echo started; ${gate.wait}; echo done > result.txt; echo finished; exit 7`];
    const first = makeJob({ runId: run, itemId: 'w', workspaceDir: dir, command });
    const old = createDockerTarget({ docker: proxy.docker, stopGraceSeconds: 1 });
    const pending = old.run(first, never);
    await untilRunning(d, run);
    await proxy.cut();
    const lost = await pending;
    expect(lost.exitCode).toBeNull();
    expect(lost.infrastructureFailure).toBe(true);
    expect(lost.reason).toMatch(new RegExp(`^docker engine unreachable at unix://${proxy.path.replace(/[.]/g, '\\.')}: `));
    expect(await gate.open()).toBe(1); // the container is still at the gate: its work happens after the cut

    // "Restart": a new target instance on a working connection.
    const fresh = createDockerTarget({ docker: d, stopGraceSeconds: 1 });
    expect(await fresh.canResume!(run, 'w', 1)).toBe(true);
    expect(await fresh.canResume!(run, 'w', 2)).toBe(false);
    const again = makeJob({ runId: run, itemId: 'w', workspaceDir: dir, command });
    expect(await fresh.run(again, never)).toEqual({ exitCode: 7, signal: null });
    expect(await readFile(join(dir, 'result.txt'), 'utf8')).toBe('done\n');
    expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('a\n');
    expect(again.log.tail()).toBe('started\nfinished\n'); // the output since the container's start
    expect(await fresh.canResume!(run, 'w', 1)).toBe(false);
    expect(await managedContainers(d, run)).toEqual([]);
  });

  it("starts again, rather than resuming, a caller's container whose call socket belonged to a process that is gone", async () => {
    const run = runId('resume-caller');
    /** A call socket answering every call with its name, as a serve process's would while it lives. */
    const socketServer = async (name: string) => {
      const t = await tempDir(`agora-call-${name}-`);
      cleanups.push(t.cleanup);
      const path = join(t.dir, 's');
      const server = createServer((c) => c.once('data', () => c.end(`${JSON.stringify({ from: name })}\n`)));
      await new Promise<void>((resolve) => server.listen(path, resolve));
      await chmod(path, 0o666); // the container's user is another uid on the host
      const close = () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
      cleanups.push(close);
      return { path, close };
    };
    const a = await socketServer('a');
    const b = await socketServer('b');
    // Waits at the gate, then calls once through $AGORA_CALL_SOCKET and prints the answer.
    const client =
      `const fs=require('fs'),net=require('net');` +
      `(function w(){if(!fs.existsSync('/tmp/agora-gate-open'))return setTimeout(w,100);` +
      `const s=net.connect(process.env.AGORA_CALL_SOCKET);let got='';s.setEncoding('utf8');` +
      `s.on('connect',()=>s.write('{}\\n'));s.on('data',d=>got+=d);` +
      `s.on('end',()=>{console.log('answer '+got.trim())});s.on('error',e=>{console.log('call failed '+e.code);process.exit(2)})})()`;
    const dir = await workspace();
    const job = (callSocket: string) =>
      makeJob({ runId: run, itemId: 'caller', workspaceDir: dir, options: { image: NODE }, callSocket, command: ['node', '-e', client] });
    const proxy = await engineProxy();
    const pending = createDockerTarget({ docker: proxy.docker, stopGraceSeconds: 1 }).run(job(a.path), never);
    const old = await untilRunning(d, run);
    await proxy.cut();
    expect((await pending).infrastructureFailure).toBe(true);
    await a.close(); // the process that served its calls is gone

    // "Restart": this process's socket is another one.
    const again = job(b.path);
    const result = createDockerTarget({ docker: d, stopGraceSeconds: 1 }).run(again, never);
    cleanups.push(() => result.then(() => undefined));
    await eventually(
      'a new container for the attempt',
      async () => (await d.listContainers({ filters: { label: [`agora.run=${run}`], status: ['running'] } })).some((c) => c.Id !== old.Id) || undefined,
    );
    await containerGate(d, run).open();
    expect(await result).toEqual({ exitCode: 0, signal: null });
    expect(again.log.tail()).toMatch(
      /left by an earlier process calls its dependencies through that process's socket, which no longer answers: removed, and the worker starts again\nanswer \{"from":"b"\}\n$/,
    );
    expect(await managedContainers(d, run)).toEqual([]);
  });

  it('resumes an attempt whose container already exited, without starting a second one', async () => {
    const run = runId('resume-exited');
    const proxy = await engineProxy();
    const dir = await workspace();
    const gate = containerGate(d, run);
    const command = ['/bin/sh', '-c', `${gate.wait}; echo out > out.txt; echo bye`];
    const old = createDockerTarget({ docker: proxy.docker });
    const pending = old.run(makeJob({ runId: run, itemId: 'w', workspaceDir: dir, command }), never);
    const { Id } = await untilRunning(d, run);
    await proxy.cut();
    await pending;
    await gate.open();
    await d.getContainer(Id).wait();

    const fresh = createDockerTarget({ docker: d });
    expect(await fresh.canResume!(run, 'w', 1)).toBe(true);
    const job = makeJob({ runId: run, itemId: 'w', workspaceDir: dir, command: ['/bin/sh', '-c', 'echo SECOND CONTAINER > second.txt'] });
    expect(await fresh.run(job, never)).toEqual({ exitCode: 0, signal: null });
    expect(await readdir(dir)).toEqual(['out.txt']); // the first container's work, not a second run of the command
    expect(job.log.tail()).toBe('bye\n');
    expect(await managedContainers(d, run)).toEqual([]);
  });

  it('keeps a finished container until released when the job asks: a restart meanwhile collects the same work again, into a fresh workspace', async () => {
    const run = runId('kept');
    const base = { 'gone.txt': 'x\n', 'keep.txt': 'k\n' };
    const command = ['/bin/sh', '-c', 'cat /proc/sys/kernel/random/uuid > token.txt; rm gone.txt'];
    const first = makeJob({ runId: run, itemId: 'w', workspaceDir: await workspace(base), command, keepUntilReleased: true });
    const result = await target.run(first, never);
    cleanups.push(async () => result.release?.());
    expect(result).toMatchObject({ exitCode: 0, signal: null });
    expect(result.release).toBeTypeOf('function');
    const token = await readFile(join(first.workspaceDir, 'token.txt'), 'utf8');
    expect((await managedContainers(d, run)).map((c) => c.State)).toEqual(['exited']);

    // "Restart" before the result was recorded: the attempt is found and collected again, not run again.
    const fresh = createDockerTarget({ docker: d, stopGraceSeconds: 1 });
    expect(await fresh.canResume!(run, 'w', 1)).toBe(true);
    const again = makeJob({
      runId: run,
      itemId: 'w',
      workspaceDir: await workspace(base),
      command: ['/bin/sh', '-c', 'echo SECOND CONTAINER > second.txt'],
      keepUntilReleased: true,
    });
    const collected = await fresh.run(again, never);
    expect(collected).toMatchObject({ exitCode: 0, signal: null });
    expect((await readdir(again.workspaceDir)).sort()).toEqual(['keep.txt', 'token.txt']);
    expect(await readFile(join(again.workspaceDir, 'token.txt'), 'utf8')).toBe(token);
    // Once more into the workspace it already wrote: the extraction replaces what is there.
    await writeFile(join(again.workspaceDir, 'stray.txt'), 'left by nobody\n');
    expect(await fresh.run(again, never)).toMatchObject({ exitCode: 0 });
    expect((await readdir(again.workspaceDir)).sort()).toEqual(['keep.txt', 'token.txt']);

    await collected.release!();
    await result.release!(); // the same container again: harmless
    expect(await managedContainers(d, run)).toEqual([]);
    expect(await fresh.canResume!(run, 'w', 1)).toBe(false);
  });

  it('does not keep a stopped worker even when the job asks: its result is never recorded', async () => {
    const run = runId('kept-stopped');
    const job = makeJob({ runId: run, itemId: 'w', workspaceDir: await workspace(), command: ['sleep', '600'], keepUntilReleased: true });
    const ac = new AbortController();
    const pending = target.run(job, ac.signal);
    cleanups.push(() => pending.then(() => undefined));
    await untilRunning(d, run);
    ac.abort('cancelled');
    const result = await pending;
    expect(result).toMatchObject({ reason: 'stopped: cancelled' });
    expect(result.release).toBeUndefined();
    expect(await managedContainers(d, run)).toEqual([]);
  });

  it('replaces a container that was created but never started (a crash between create and start)', async () => {
    const run = runId('created');
    const dir = await workspace({ 'a.txt': 'a\n' });
    // What an orchestrator that died right after createContainer leaves: the attempt's name and labels, no start.
    const stale = await d.createContainer({
      name: containerName(run, 'w', 1),
      Image: 'localhost/agora-busybox:test',
      Cmd: ['sh', '-c', 'echo stale > stale.txt'],
      Labels: { [LABEL_MANAGED]: 'true', [LABEL_SCOPE]: DEFAULT_SCOPE, 'agora.run': run, 'agora.item': 'w', 'agora.attempt': '1' },
    });
    cleanups.push(() => stale.remove({ force: true }).catch(() => undefined));
    expect(await target.canResume!(run, 'w', 1)).toBe(true);
    const job = makeJob({ runId: run, itemId: 'w', workspaceDir: dir, command: ['/bin/sh', '-c', 'cat a.txt; echo fresh > fresh.txt'] });
    expect(await target.run(job, never)).toEqual({ exitCode: 0, signal: null });
    expect((await readdir(dir)).sort()).toEqual(['a.txt', 'fresh.txt']);
    expect(job.log.tail()).toBe('a\n');
    expect(await managedContainers(d, run)).toEqual([]);
  });

  it('reapOrphans removes managed containers whose attempt is not live and keeps the live ones', async () => {
    const run = runId('reap');
    const mk = (item: string) =>
      d.createContainer({
        Image: 'localhost/agora-busybox:test',
        Cmd: ['sleep', '60'],
        Labels: { [LABEL_MANAGED]: 'true', [LABEL_SCOPE]: DEFAULT_SCOPE, 'agora.run': run, 'agora.item': item, 'agora.attempt': '1' },
      });
    const dead = await mk('dead');
    await dead.start();
    const live = await mk('live');
    cleanups.push(() => live.remove({ force: true }).catch(() => undefined));
    const reaped = await target.reapOrphans!((r, item) => !(r === run && item === 'dead'));
    expect(reaped).toBe(1);
    const left = await managedContainers(d, run);
    expect(left.map((c) => c.Labels['agora.item'])).toEqual(['live']);
  });

  it('passes secrets only through the environment: redacted from the log, absent from labels', async () => {
    const run = runId('secrets');
    const secret = 's3cr3t-value-42';
    const gate = containerGate(d, run); // the container waits here until it has been inspected
    const job = makeJob({
      runId: run,
      itemId: 'sec',
      workspaceDir: await workspace(),
      secrets: { API_TOKEN: secret },
      env: { PLAIN: 'visible' },
      command: ['/bin/sh', '-c', `echo "token=$API_TOKEN plain=$PLAIN"; echo "$API_TOKEN" >&2; ${gate.wait}`],
    });
    const pending = target.run(job, never);
    cleanups.push(() => pending.then(() => undefined));
    const { Id } = await untilRunning(d, run);
    const info = await d.getContainer(Id).inspect();
    expect(JSON.stringify(info.Config.Labels)).not.toContain(secret);
    expect(info.Config.Env).toContain(`API_TOKEN=${secret}`);
    expect(info.HostConfig).toMatchObject({
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      Privileged: false,
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: 256,
    });
    expect(info.Config.User).toBe('65534:65534');
    const volume = info.Mounts.find((m) => m.Destination === '/workspace');
    expect(volume).toMatchObject({ Type: 'volume', RW: true });
    // No host path is mounted: Podman lists the anonymous volume (by name) among the binds, nothing else.
    expect((info.HostConfig.Binds ?? []).filter((b) => !b.startsWith(`${volume!.Name}:`))).toEqual([]);
    await gate.open();
    expect(await pending).toEqual({ exitCode: 0, signal: null });
    // The anonymous workspace volume went with the container.
    await expect(d.getVolume(volume!.Name!).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await job.log.close();
    expect(job.log.tail()).toBe('token=*** plain=visible\n***\n');
  });

  it('an unknown image is a plain failure naming the image', async () => {
    const job = makeJob({
      runId: runId('noimage'),
      itemId: 'x',
      workspaceDir: await workspace(),
      options: { image: 'localhost/agora-no-such-image:none' },
      command: ['true'],
    });
    expect(await target.run(job, never)).toEqual({
      exitCode: null,
      reason: 'image not found: localhost/agora-no-such-image:none; build or pull it on the engine host first',
      infrastructureFailure: false,
    });
  });

  it('an unreachable engine is an infrastructure failure naming where it looked', async () => {
    const missing = join(tmpdir(), `agora-no-engine-${process.pid}.sock`);
    const t = createDockerTarget({ docker: new Docker({ socketPath: missing }) });
    const job = makeJob({ runId: runId('noengine'), itemId: 'x', workspaceDir: await workspace(), command: ['true'] });
    const result = await t.run(job, never);
    expect(result).toMatchObject({ exitCode: null, infrastructureFailure: true });
    expect(result.reason).toMatch(new RegExp(`^docker engine unreachable at unix://${missing.replace(/[.]/g, '\\.')}: .*ENOENT`));
  });

  it('rejects options it cannot honour before touching the engine', async () => {
    const dir = await workspace();
    const run = (options: Record<string, unknown>) =>
      target.run(makeJob({ runId: runId('opts'), itemId: 'x', workspaceDir: dir, options, command: ['true'] } as WorkerJob), never);
    expect(await run({})).toMatchObject({ reason: expect.stringMatching(/`image` is required/) as unknown, infrastructureFailure: false });
    expect(await run({ image: 'x', memory: 'lots' })).toMatchObject({ reason: expect.stringMatching(/memory "lots" is not a size/) as unknown });
    expect(await run({ image: 'x', user: 'node' })).toMatchObject({ reason: expect.stringMatching(/user "node" is not numeric/) as unknown });
  });
});

describe('docker options parsing', () => {
  it('reads memory sizes the way docker does (binary units) and refuses anything else', () => {
    expect(parseMemory('512m')).toBe(512 * 1024 * 1024);
    expect(parseMemory('1g')).toBe(1024 ** 3);
    expect(parseMemory('1.5G')).toBe(1.5 * 1024 ** 3);
    expect(parseMemory('100k')).toBe(102_400);
    expect(parseMemory('64MB')).toBe(64 * 1024 * 1024);
    expect(parseMemory('4096')).toBe(4096);
    for (const bad of ['', 'lots', '-1m', '0', '1x', '1 g b']) expect(parseMemory(bad)).toBeUndefined();
  });

  it('names a container after its attempt: stable, distinct per attempt, valid for the engine', () => {
    const a = containerName('run-1', 'item.a', 1);
    expect(containerName('run-1', 'item.a', 1)).toBe(a);
    expect(new Set([a, containerName('run-1', 'item.a', 2), containerName('run-1.item', 'a', 1), containerName('run-2', 'item.a', 1)]).size).toBe(4);
    expect(a).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/);
  });
});
