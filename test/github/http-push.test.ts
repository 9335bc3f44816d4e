import { spawnSync } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { parseReceivePackAnswer, receivePackRequest, type RefCommand } from '../../src/github/http-push.js';
import { gitSync, initRepo } from '../git/git-fixtures.js';

/**
 * The request and the answer of an in-process push, against git's own receive-pack in the mode smart HTTP
 * runs it in (`--stateless-rpc`, as `git http-backend` does): the bytes a server reads and writes.
 */
let local: Awaited<ReturnType<typeof initRepo>>;
let remote: Awaited<ReturnType<typeof initRepo>>;
let store: LocalGitStore;

beforeAll(async () => {
  local = await initRepo();
  remote = await initRepo({ bare: true });
  store = await openLocalStore(local.dir);
});
afterAll(async () => {
  await local.cleanup();
  await remote.cleanup();
});

async function commit(text: string, parents: string[] = []): Promise<string> {
  const blob = await store.writeBlob(text);
  const tree = await store.writeTree([{ mode: '100644', path: 'f.txt', oid: blob, type: 'blob' }]);
  const who = agoraIdentity(1_800_000_000_000);
  return store.writeCommit({ tree, parents, message: text, author: who, committer: who });
}

async function objectsOf(c: string): Promise<string[]> {
  const { tree } = await store.readCommit(c);
  return [c, tree, ...(await store.readTree(tree)).map((e) => e.oid)];
}

function receivePack(body: Buffer) {
  const r = spawnSync('git', ['receive-pack', '--stateless-rpc', remote.gitdir], { input: body, env: { PATH: process.env.PATH!, GIT_CONFIG_NOSYSTEM: '1' } });
  expect(r.status, r.stderr.toString()).toBe(0);
  return parseReceivePackAnswer(r.stdout);
}

const remoteRef = (ref: string) => gitSync(remote.gitdir, ['for-each-ref', '--format=%(objectname)', ref]).trim() || null;

describe('a push over smart HTTP, made in-process', () => {
  it('creates and moves refs on their leases, with a pack of what the remote lacks', async () => {
    const a = await commit('a');
    const created = receivePack(
      receivePackRequest([{ ref: 'refs/agora/runs/x', next: a, expected: null }], false, await store.packObjects(await objectsOf(a))),
    );
    expect(created).toEqual({ kind: 'report', refs: new Map([['refs/agora/runs/x', { ok: true }]]), messages: [] });
    const b = await commit('b', [a]);
    const moved = receivePack(receivePackRequest([{ ref: 'refs/agora/runs/x', next: b, expected: a }], true, await store.packObjects(await objectsOf(b))));
    expect(moved).toMatchObject({ kind: 'report', refs: new Map([['refs/agora/runs/x', { ok: true }]]) });
    expect(remoteRef('refs/agora/runs/x')).toBe(b);
    // A new ref at a commit the remote has needs an empty pack.
    const empty = receivePack(receivePackRequest([{ ref: 'refs/agora/runs/y', next: a, expected: null }], false, await store.packObjects([])));
    expect(empty).toMatchObject({ kind: 'report', refs: new Map([['refs/agora/runs/y', { ok: true }]]) });
  });

  it('a stale lease is refused for that ref alone; in an atomic push every ref fails and the message names the one that did', async () => {
    const c = await commit('c');
    const d = await commit('d');
    const pack = await store.packObjects([...(await objectsOf(c)), ...(await objectsOf(d))]);
    const stale: RefCommand = { ref: 'refs/agora/runs/x', next: c, expected: d }; // the remote has it elsewhere
    const fresh: RefCommand = { ref: 'refs/agora/runs/z', next: d, expected: null };
    const each = receivePack(receivePackRequest([stale, fresh], false, pack));
    expect(each.kind === 'report' && each.refs.get(stale.ref)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/failed to (update|lock)|cannot lock/),
    });
    expect(each.kind === 'report' && each.refs.get(fresh.ref)).toEqual({ ok: true });

    const other: RefCommand = { ref: 'refs/agora/runs/w', next: d, expected: null };
    const atomic = receivePack(receivePackRequest([stale, other], true, pack));
    expect(atomic.kind).toBe('report');
    if (atomic.kind !== 'report') return;
    expect([...atomic.refs.values()]).toEqual([
      { ok: false, reason: 'atomic transaction failed' },
      { ok: false, reason: 'atomic transaction failed' },
    ]);
    expect(atomic.messages.join('\n')).toContain(`cannot lock ref '${stale.ref}'`);
    expect(remoteRef(other.ref)).toBeNull();
  });

  it('a ref whose objects the pack lacks is refused as missing objects, not as a lost race', async () => {
    const e = await commit('e only here');
    const answer = receivePack(receivePackRequest([{ ref: 'refs/agora/runs/e', next: e, expected: null }], false, await store.packObjects([])));
    expect(answer.kind === 'report' && answer.refs.get('refs/agora/runs/e')).toEqual({ ok: false, reason: 'missing necessary objects' });
  });

  it("what the remote's hook says when it declines arrives as its messages", async () => {
    const hooks = join(remote.gitdir, 'hooks');
    await mkdir(hooks, { recursive: true });
    await writeFile(join(hooks, 'pre-receive'), '#!/bin/sh\necho "refusing: a rule of this repository" >&2\nexit 1\n');
    await chmod(join(hooks, 'pre-receive'), 0o755);
    const f = await commit('f');
    const answer = receivePack(receivePackRequest([{ ref: 'refs/agora/runs/f', next: f, expected: null }], false, await store.packObjects(await objectsOf(f))));
    expect(answer).toMatchObject({
      kind: 'report',
      refs: new Map([['refs/agora/runs/f', { ok: false, reason: 'pre-receive hook declined' }]]),
      messages: ['refusing: a rule of this repository'],
    });
  });

  it('an answer that is not a status report is unusable, never read as success', () => {
    expect(parseReceivePackAnswer(Buffer.from('<html>proxy error</html>'))).toMatchObject({ kind: 'unusable' });
    expect(parseReceivePackAnswer(Buffer.from('0000'))).toMatchObject({ kind: 'unusable' });
    const pkt = (payload: string) =>
      Buffer.concat([Buffer.from((Buffer.byteLength(payload) + 4).toString(16).padStart(4, '0')), Buffer.from(payload), Buffer.from('0000')]);
    expect(parseReceivePackAnswer(pkt('\x03server exploded'))).toEqual({ kind: 'unusable', why: 'the remote failed: server exploded' });
    expect(parseReceivePackAnswer(pkt('unpack index-pack died\n'))).toMatchObject({ kind: 'unusable', why: expect.stringContaining('index-pack died') });
  });
});
