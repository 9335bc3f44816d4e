import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { createLogSink } from '../../src/executors/log-sink.js';
import { createDockerTarget } from '../../src/executors/docker-target.js';
import { containerName, createSpec, validateOptions, type Validated } from '../../src/executors/docker-spec.js';
import type { WorkerJob } from '../../src/executors/types.js';

/** What a docker container of a worker that calls its dependencies is given, decided before any engine is asked. */

function job(extra: Partial<WorkerJob> = {}): WorkerJob {
  return {
    runId: 'r-1',
    itemId: 'boxed',
    attempt: 1,
    workspaceDir: '/nonexistent',
    command: ['node', 'call.cjs'],
    env: { AGORA_CALL_SOCKET: '/tmp/agora-call-x/s' },
    secrets: {},
    log: createLogSink({ secrets: [] }),
    options: { image: 'img' },
    ...extra,
  };
}

const options = validateOptions({ image: 'img' }) as Validated;

describe('the docker target and the call socket', () => {
  it("mounts the socket file (not its directory) into the item's own container and points the variable there", () => {
    const spec = createSpec(job({ callSocket: '/tmp/agora-call-x/s' }), options, 'scope');
    expect(spec.HostConfig!.Binds).toEqual(['/tmp/agora-call-x/s:/run/agora/call.sock']);
    expect(spec.Env).toContain('AGORA_CALL_SOCKET=/run/agora/call.sock');
    expect(spec.HostConfig!.NetworkMode).toBe('none');
  });

  it("gives a job without the socket neither the mount nor the host's path", () => {
    const spec = createSpec(job(), options, 'scope');
    expect(spec.HostConfig!.Binds).toEqual([]);
    expect(spec.Env!.some((e) => e.startsWith('AGORA_CALL_SOCKET='))).toBe(false);
  });

  it('gives a job with control files the /agora volume and points the variables into it, and a job without neither', () => {
    const withControl = createSpec(
      job({ paramsFile: '/host/params.json', emitDir: '/host/emit', env: { AGORA_PARAMS: '/host/params.json', AGORA_EMIT: '/host/emit' } }),
      options,
      'scope',
    );
    expect(withControl.Volumes).toEqual({ '/workspace': {}, '/agora': {} });
    expect(withControl.Env).toEqual(expect.arrayContaining(['AGORA_PARAMS=/agora/params.json', 'AGORA_EMIT=/agora/emit']));
    // A host path that reached env without its field (a child's job) is not passed on.
    const without = createSpec(job({ env: { AGORA_PARAMS: '/host/params.json', AGORA_EMIT: '/host/emit' } }), options, 'scope');
    expect(without.Volumes).toEqual({ '/workspace': {} });
    expect(without.Env!.filter((e) => /^AGORA_(PARAMS|EMIT)=/.test(e))).toEqual([]);
  });

  it("names a job beside the item's worker apart from the worker's container, and keeps the worker's name as it was", () => {
    expect(containerName('r-1', 'boxed', 1, 'scope', 'boxed.1/echoer#1')).not.toBe(containerName('r-1', 'boxed', 1, 'scope'));
    expect(createSpec(job({ subJob: 'boxed.1/echoer#1' }), options, 'scope').name).toBe(containerName('r-1', 'boxed', 1, 'scope', 'boxed.1/echoer#1'));
    expect(createSpec(job(), options, 'scope').name).toBe(containerName('r-1', 'boxed', 1, 'scope'));
  });

  it("refuses a worker that calls on a remote engine, whose containers cannot reach this host's socket, before asking the engine anything", async () => {
    // Nothing listens on port 9 of loopback: a request to the engine would fail with a connection error instead.
    const target = createDockerTarget({ docker: new Docker({ host: '127.0.0.1', port: 9, protocol: 'http' }) });
    const result = await target.run(job({ callSocket: '/tmp/agora-call-x/s' }), new AbortController().signal);
    expect(result).toEqual({
      exitCode: null,
      infrastructureFailure: false,
      reason: expect.stringMatching(
        /^the worker calls its dependencies \(agora call\) through a socket on this host, which a container on the engine at tcp:\/\/127\.0\.0\.1:9 cannot reach/,
      ),
    });
  });
});
