import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RemoteMirror } from '../../src/github/remote-sync.js';
import { MirroredGitStore } from '../../src/github/mirrored-store.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { git, startWorld, type World } from '@agora/github-sim/harness';

/** The mirror against the simulator's git server (git http-backend): fetch, leased pushes, the remote CAS. */
describe('remote sync over smart HTTP', () => {
  let w: World;
  let dir: string;
  let url: string;
  beforeAll(async () => {
    w = await startWorld();
    dir = await mkdtemp(join(tmpdir(), 'agora-mirror-'));
    url = `${w.sim.gitUrl}/${w.repo.fullName}.git`;
  });
  afterAll(async () => {
    await w.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** `count` blobs written to `store`, as tree entries: `named(i)` gives each one's path and text. */
  function blobEntries(store: MirroredGitStore, count: number, named: (i: number) => [string, string]) {
    return Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const [path, text] = named(i);
        return { mode: '100644' as const, path, oid: await store.writeBlob(text), type: 'blob' as const };
      }),
    );
  }

  /** The pushes the simulator has answered so far (one POST to git-receive-pack each). */
  const receivePackPosts = () => w.sim.requests.filter((r) => r.route === 'git-http' && r.method === 'POST' && r.path.endsWith('/git-receive-pack'));

  async function commitIn(store: MirroredGitStore, text: string): Promise<string> {
    const blob = await store.writeBlob(text);
    const tree = await store.writeTree([{ mode: '100644', path: 'f.txt', oid: blob, type: 'blob' }]);
    const who = agoraIdentity(Date.now());
    return store.writeCommit({ tree, parents: [], message: text, author: who, committer: who });
  }

  it('fetches a branch with the token in a header, never in the URL or the mirror config', async () => {
    const mirror = await RemoteMirror.open(join(dir, 'a'), url, () => w.token());
    await mirror.fetchRefs(['+refs/heads/main:refs/heads/main']);
    expect((await mirror.git(['rev-parse', 'refs/heads/main'])).trim()).toBe(w.repo.headSha);
    const config = await readFile(join(dir, 'a', 'config'), 'utf8');
    expect(config).not.toMatch(/ghs_|token|Authorization/i);
    await expect(RemoteMirror.open(join(dir, 'x'), url.replace('http://', 'http://u:p@'), () => w.token())).rejects.toThrow(/credentials/);
    await expect(readdir(join(dir, 'x'))).rejects.toThrow();
  });

  it('two mirrors race to create and to move one ref: exactly one wins each time, the loser re-fetches', async () => {
    const a = new MirroredGitStore(await RemoteMirror.open(join(dir, 'race-a'), url, () => w.token()), 'refs/agora/');
    const b = new MirroredGitStore(await RemoteMirror.open(join(dir, 'race-b'), url, () => w.token()), 'refs/agora/');
    const ref = 'refs/agora/runs/race';
    const [ca, cb] = [await commitIn(a, 'from a'), await commitIn(b, 'from b')];
    const created = await Promise.all([a.casRef(ref, ca, null), b.casRef(ref, cb, null)]);
    expect(created.filter(Boolean)).toHaveLength(1);
    const winner = created[0] ? ca : cb;
    expect((await git(['rev-parse', ref], w.sim.repoDir(w.repo.fullName))).trim()).toBe(winner);
    // The loser now sees the winner's ref (fetched after the refusal) and can build on it.
    const loser = created[0] ? b : a;
    expect(await loser.resolveRef(ref)).toBe(winner);

    // Both move it from the same old value: one lease holds, the other is refused by receive-pack.
    const [na, nb] = [await commitIn(a, 'a2'), await commitIn(b, 'b2')];
    await a.fetch([`+${ref}:${ref}`]);
    await b.fetch([`+${ref}:${ref}`]);
    const moved = await Promise.all([a.casRef(ref, na, winner), b.casRef(ref, nb, winner)]);
    expect(moved.filter(Boolean)).toHaveLength(1);
    const remote = (await git(['rev-parse', ref], w.sim.repoDir(w.repo.fullName))).trim();
    expect(remote).toBe(moved[0] ? na : nb);
    expect(await a.resolveRef(ref)).toBe(remote);
    expect(await b.resolveRef(ref)).toBe(remote);
    expect(a.conflicts + b.conflicts).toBe(2);
  });

  it('a swap another writer already made, to the very same commit, is a conflict, not a success (its lease was never checked)', async () => {
    const a = new MirroredGitStore(await RemoteMirror.open(join(dir, 'same-a'), url, () => w.token()), 'refs/agora/');
    const b = new MirroredGitStore(await RemoteMirror.open(join(dir, 'same-b'), url, () => w.token()), 'refs/agora/');
    const ref = 'refs/agora/runs/same';
    const start = await commitIn(a, 'start');
    expect(await a.casRef(ref, start, null)).toBe(true);
    await b.fetch([`+${ref}:${ref}`]);
    // Both replicas make the same content-addressed transition: the same commit, to the byte.
    const sameCommit = async (store: MirroredGitStore) => {
      const blob = await store.writeBlob('next state');
      const tree = await store.writeTree([{ mode: '100644', path: 'f.txt', oid: blob, type: 'blob' }]);
      const who = agoraIdentity(1_700_000_000_000);
      return store.writeCommit({ tree, parents: [start], message: 'next', author: who, committer: who });
    };
    const [na, nb] = [await sameCommit(a), await sameCommit(b)];
    expect(na).toBe(nb);
    expect(await a.casRef(ref, na, start)).toBe(true);
    // b's lease (start) is stale, but git sees the remote already at b's new value and sends nothing.
    expect(await b.casRef(ref, nb, start)).toBe(false);
    expect(b.conflicts).toBe(1);
    expect(await b.resolveRef(ref)).toBe(na);
    // The same through an atomic push of the mirror itself.
    const out = await b.mirror.pushRefs([{ ref, next: nb, expected: start }]);
    expect(out).toMatchObject({ ok: false, rejected: [ref] });
  });

  it('a stale lease on a branch is refused and names the ref', async () => {
    const m = await RemoteMirror.open(join(dir, 'lease'), url, () => w.token());
    await m.fetchRefs(['+refs/heads/main:refs/heads/main']);
    const stale = '1111111111111111111111111111111111111111';
    // The runner is hermetic (no global config, no GIT_* from the parent): the identity is given here.
    const next = (
      await m.git([
        '-c',
        'user.name=Test',
        '-c',
        'user.email=test@example.invalid',
        'commit-tree',
        '-p',
        w.repo.headSha,
        '-m',
        'next',
        `${w.repo.headSha}^{tree}`,
      ])
    ).trim();
    const out = await m.pushRefs([{ ref: 'refs/heads/main', next, expected: stale }]);
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.rejected).toEqual(['refs/heads/main']);
    expect((await git(['rev-parse', 'refs/heads/main'], w.sim.repoDir(w.repo.fullName))).trim()).toBe(w.repo.headSha);
    expect(await m.pushRefs([{ ref: 'refs/heads/main', next, expected: w.repo.headSha }])).toEqual({ ok: true });
    if (!out.ok) expect(out.refused).toBeUndefined(); // a lease conflict, not a refusal
  });

  it("a push GitHub declines (a workflow file without the workflows permission) is a refusal with GitHub's words, not a conflict", async () => {
    const store = new MirroredGitStore(await RemoteMirror.open(join(dir, 'refused'), url, () => w.token()), 'refs/agora/');
    await store.fetch(['+refs/heads/main:refs/heads/main']);
    const head = (await store.resolveRef('refs/heads/main'))!;
    const blob = await store.writeBlob('on: push\n');
    const workflows = await store.writeTree([{ mode: '100644', path: 'ci.yml', oid: blob, type: 'blob' }]);
    const github = await store.writeTree([{ mode: '040000', path: 'workflows', oid: workflows, type: 'tree' }]);
    const tree = await store.writeTree([{ mode: '040000', path: '.github', oid: github, type: 'tree' }]);
    const who = agoraIdentity(Date.now());
    const next = await store.writeCommit({ tree, parents: [head], message: 'a workflow', author: who, committer: who });
    const out = await store.mirror.pushRefs([{ ref: 'refs/heads/main', next, expected: head }]);
    expect(out).toMatchObject({ ok: false, rejected: ['refs/heads/main'] });
    if (!out.ok)
      expect(out.refused).toBe('refusing to allow a GitHub App to create or update workflow `.github/workflows/ci.yml` without `workflows` permission');
    // Through the mirror's compare-and-swap on a shared ref, the same refusal fails fast with a typed error.
    await expect(store.casRef('refs/agora/runs/refused', next, null)).rejects.toMatchObject({
      code: 'push-refused',
      message: expect.stringContaining('without `workflows` permission'),
    });
    expect((await git(['rev-parse', 'refs/heads/main'], w.sim.repoDir(w.repo.fullName))).trim()).toBe(head);
  });

  it('swaps queued together go to GitHub in one push, each on its own lease: a stale one is refused alone', async () => {
    const a = new MirroredGitStore(await RemoteMirror.open(join(dir, 'batch-a'), url, () => w.token()), 'refs/agora/');
    const b = new MirroredGitStore(await RemoteMirror.open(join(dir, 'batch-b'), url, () => w.token()), 'refs/agora/');
    // Another writer created one of the refs: a's view of it (absent) is stale.
    const theirs = await commitIn(b, 'theirs');
    expect(await b.casRef('refs/agora/runs/batch-4', theirs, null)).toBe(true);
    const mine = await Promise.all([0, 1, 2, 3, 4].map((i) => commitIn(a, `mine ${i}`)));
    const pushesBefore = a.mirror.httpPushes;
    const landed = await Promise.all(mine.map((c, i) => a.casRef(`refs/agora/runs/batch-${i}`, c, null)));
    expect(landed).toEqual([true, true, true, true, false]);
    // One push for the five (counted by the mirror: a request retried after a dropped connection is still one push).
    expect(a.mirror.httpPushes - pushesBefore).toBe(1);
    for (let i = 0; i < 4; i += 1) expect((await git(['rev-parse', `refs/agora/runs/batch-${i}`], w.sim.repoDir(w.repo.fullName))).trim()).toBe(mine[i]);
    // The refused one was fetched again: a now sees the other writer's ref.
    expect(await a.resolveRef('refs/agora/runs/batch-4')).toBe(theirs);
    expect(a.conflicts).toBe(1);
    // A ref swapped twice in one batch: the second expects the first's result and goes in the next push.
    const [x, y] = [await commitIn(a, 'x'), await commitIn(a, 'y')];
    expect(await Promise.all([a.casRef('refs/agora/runs/batch-0', x, mine[0]!), a.casRef('refs/agora/runs/batch-0', y, x)])).toEqual([true, true]);
    expect((await git(['rev-parse', 'refs/agora/runs/batch-0'], w.sim.repoDir(w.repo.fullName))).trim()).toBe(y);
  });

  it('pushes in-process, one request and no ref advertisement; a ref whose objects GitHub says are missing goes again by git push', async () => {
    const store = new MirroredGitStore(await RemoteMirror.open(join(dir, 'inproc'), url, () => w.token()), 'refs/agora/');
    const gitHttp = () => w.sim.requests.filter((r) => r.route === 'git-http').map((r) => `${r.method} ${r.path.replace(/^.*\.git/, '')}`);
    const seen = gitHttp().length;
    const first = await commitIn(store, 'in-process');
    expect(await store.casRef('refs/agora/runs/inproc', first, null)).toBe(true);
    await w.sim.settle(); // the simulator logs a request once it is done with it, after the answer went out
    // POSTs only (one, or two if a dropped connection made it send again): no ref advertisement was read.
    expect(gitHttp().slice(seen)).toContain('POST /git-receive-pack');
    expect(
      gitHttp()
        .slice(seen)
        .filter((r) => r !== 'POST /git-receive-pack'),
    ).toEqual([]);
    expect({ http: store.mirror.httpPushes, cli: store.mirror.cliFallbacks }).toEqual({ http: 1, cli: 0 });
    // A pack that leaves out what the ref needs: receive-pack refuses it as missing objects, and git push
    // (which asks GitHub what it has) lands it.
    const second = await commitIn(store, 'needs its objects');
    const outcomes = await store.mirror.pushEach([{ ref: 'refs/agora/runs/inproc', next: second, expected: first }], { pack: await store.packObjects([]) });
    expect(outcomes.get('refs/agora/runs/inproc')).toEqual({ kind: 'ok' });
    expect({ http: store.mirror.httpPushes, cli: store.mirror.cliFallbacks }).toEqual({ http: 2, cli: 1 });
    expect((await git(['rev-parse', 'refs/agora/runs/inproc'], w.sim.repoDir(w.repo.fullName))).trim()).toBe(second);
  });

  it('a push request whose connection is dropped is sent once more, in-process, before git push would take over', async () => {
    // A proxy in front of the simulator's git server that drops the connection of the first push it sees.
    const target = new URL(w.sim.gitUrl);
    let pushRequests = 0;
    const proxy: Server = createServer((req, res) => {
      if (req.method === 'POST' && req.url?.endsWith('/git-receive-pack') && ++pushRequests === 1) {
        req.socket.destroy();
        return;
      }
      const upstream = httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((listening) => proxy.listen(0, '127.0.0.1', listening));
    try {
      const { port } = proxy.address() as AddressInfo;
      const proxied = `http://127.0.0.1:${port}${target.pathname.replace(/\/$/, '')}/${w.repo.fullName}.git`;
      const store = new MirroredGitStore(await RemoteMirror.open(join(dir, 'dropped'), proxied, () => w.token()), 'refs/agora/');
      const commit = await commitIn(store, 'sent twice');
      expect(await store.casRef('refs/agora/runs/dropped', commit, null)).toBe(true);
      expect((await git(['rev-parse', 'refs/agora/runs/dropped'], w.sim.repoDir(w.repo.fullName))).trim()).toBe(commit);
      expect({ pushRequests, httpPushes: store.mirror.httpPushes, cliFallbacks: store.mirror.cliFallbacks }).toEqual({
        pushRequests: 2,
        httpPushes: 1,
        cliFallbacks: 0,
      });
    } finally {
      await new Promise((closed) => proxy.close(closed));
    }
  });

  it("an atomic push whose pack lacks one ref's objects: GitHub still updates the others (reported ok), and that ref goes by git push", async () => {
    const store = new MirroredGitStore(await RemoteMirror.open(join(dir, 'inproc-atomic'), url, () => w.token()), 'refs/agora/');
    const [a, b] = [await commitIn(store, 'a has its objects'), await commitIn(store, 'b does not')];
    const { tree } = await store.readCommit(a);
    const pack = await store.packObjects([a, tree, ...(await store.readTree(tree)).map((e) => e.oid)]);
    const outcomes = await store.mirror.pushEach(
      [
        { ref: 'refs/agora/runs/atomic-a', next: a, expected: null },
        { ref: 'refs/agora/runs/atomic-b', next: b, expected: null },
      ],
      { atomic: true, pack },
    );
    expect(Object.fromEntries(outcomes)).toEqual({ 'refs/agora/runs/atomic-a': { kind: 'ok' }, 'refs/agora/runs/atomic-b': { kind: 'ok' } });
    expect(store.mirror.cliFallbacks).toBe(1);
    expect(store.mirror.lastFallback).toBe('GitHub lacked objects for refs/agora/runs/atomic-b');
    for (const [ref, oid] of [
      ['refs/agora/runs/atomic-a', a],
      ['refs/agora/runs/atomic-b', b],
    ] as const) {
      expect((await git(['rev-parse', ref], w.sim.repoDir(w.repo.fullName))).trim()).toBe(oid);
    }
  });

  it('a transaction of several refs lands on GitHub all or none: a stale lease on one leaves every one as it was; a swap queued beside it goes in the next push', async () => {
    const a = new MirroredGitStore(await RemoteMirror.open(join(dir, 'atomic-a'), url, () => w.token()), 'refs/agora/');
    const b = new MirroredGitStore(await RemoteMirror.open(join(dir, 'atomic-b'), url, () => w.token()), 'refs/agora/');
    const gh = async (ref: string) => (await git(['for-each-ref', '--format=%(objectname)', ref], w.sim.repoDir(w.repo.fullName))).trim() || null;
    const theirs = await commitIn(b, 'their integration');
    expect(await b.casRef('refs/agora/integration/tx', theirs, null)).toBe(true);
    const [state, integration, patch, lease] = await Promise.all(['state', 'integration', 'patch', 'lease'].map((t) => commitIn(a, t)));
    const tick = [
      { ref: 'refs/agora/integration/tx', next: integration!, expected: null }, // stale: b created it
      { ref: 'refs/agora/patches/tx/one', next: patch!, expected: null },
      { ref: 'refs/agora/runs/tx', next: state!, expected: null },
    ];
    const [landed, leased] = await Promise.all([a.casRefs(tick), a.casRef('refs/agora/leases/tx', lease!, null)]);
    expect({ landed, leased }).toEqual({ landed: false, leased: true });
    expect({ state: await gh('refs/agora/runs/tx'), patch: await gh('refs/agora/patches/tx/one'), integration: await gh('refs/agora/integration/tx') }).toEqual(
      { state: null, patch: null, integration: theirs },
    );
    expect({ state: await a.resolveRef('refs/agora/runs/tx'), integration: await a.resolveRef('refs/agora/integration/tx') }).toEqual({
      state: null,
      integration: theirs,
    });
    expect(await gh('refs/agora/leases/tx')).toBe(lease);
    // Redone on the fresh value, the transaction lands whole, in one push.
    const pushesBefore = a.mirror.httpPushes;
    expect(await a.casRefs([{ ...tick[0]!, expected: theirs }, tick[1]!, tick[2]!])).toBe(true);
    expect(a.mirror.httpPushes - pushesBefore).toBe(1);
    expect({ state: await gh('refs/agora/runs/tx'), patch: await gh('refs/agora/patches/tx/one'), integration: await gh('refs/agora/integration/tx') }).toEqual(
      { state, patch, integration },
    );
  });

  it('a commit that changes one entry of a large tree is pushed as deltas of what GitHub has: the push follows the change, not the tree', async () => {
    const store = new MirroredGitStore(await RemoteMirror.open(join(dir, 'deltas'), url, () => w.token()), 'refs/agora/');
    const ref = 'refs/agora/runs/deltas';
    const entries = await blobEntries(store, 2_000, (i) => [`item-${i}.json`, `{"n":${i}}\n`]);
    const who = agoraIdentity(Date.now());
    const commitOf = async (list: typeof entries, parents: string[]) =>
      store.writeCommit({ tree: await store.writeTree(list), parents, message: 'state', author: who, committer: who });
    const first = await commitOf(entries, []);
    expect(await store.casRef(ref, first, null)).toBe(true);
    const changed = [...entries];
    changed[1_000] = { ...changed[1_000]!, oid: await store.writeBlob('{"n":1000,"status":"done"}\n') };
    const second = await commitOf(changed, [first]);
    await w.sim.settle();
    const before = receivePackPosts().length;
    expect(await store.casRef(ref, second, first)).toBe(true);
    await w.sim.settle();
    const sent = receivePackPosts().slice(before);
    expect(sent).toHaveLength(1);
    // The tree alone is 2,000 entries of about 35 bytes (70 KB, mostly ids that do not compress); its
    // delta names one entry. The commit, the new blob and the ref command are the rest.
    expect(sent[0]!.requestBytes).toBeLessThan(1_000);
    expect({ cli: store.mirror.cliFallbacks }).toEqual({ cli: 0 });
    const remote = w.sim.repoDir(w.repo.fullName);
    expect((await git(['rev-parse', ref], remote)).trim()).toBe(second);
    expect((await git(['rev-parse', `${ref}^{tree}`], remote)).trim()).toBe((await store.readCommit(second)).tree);
    expect(await git(['cat-file', '-p', `${ref}:item-1000.json`], remote)).toBe('{"n":1000,"status":"done"}\n');
  });

  it('a delta of a base GitHub lacks cannot be unpacked there: git push, which asks what GitHub has, lands the ref', async () => {
    const store = new MirroredGitStore(await RemoteMirror.open(join(dir, 'missing-base'), url, () => w.token()), 'refs/agora/');
    const ref = 'refs/agora/runs/missing-base';
    const others = await blobEntries(store, 20, (i) => [`other-${i}.txt`, `other ${i}\n`]);
    const unpushed = await store.writeTree([
      ...others,
      { mode: '100644', path: 'f.txt', oid: await store.writeBlob('only here, never pushed\n'), type: 'blob' },
    ]);
    const blob = await store.writeBlob('pushed\n');
    const tree = await store.writeTree([...others, { mode: '100644', path: 'f.txt', oid: blob, type: 'blob' }]);
    const who = agoraIdentity(Date.now());
    const commit = await store.writeCommit({ tree, parents: [], message: 'needs its tree', author: who, committer: who });
    const pack = await store.packObjects([commit, tree, blob, ...others.map((o) => o.oid)], new Map([[tree, unpushed]]));
    expect(pack.length, 'the tree went as a delta').toBeLessThan((await store.packObjects([commit, tree, blob, ...others.map((o) => o.oid)])).length);
    const outcomes = await store.mirror.pushEach([{ ref, next: commit, expected: null }], { pack });
    expect(outcomes.get(ref)).toEqual({ kind: 'ok' });
    expect(store.mirror.cliFallbacks).toBe(1);
    expect(store.mirror.lastFallback).toMatch(/could not unpack/);
    expect((await git(['rev-parse', `${ref}^{tree}`], w.sim.repoDir(w.repo.fullName))).trim()).toBe(tree);
  });

  it("a run's base stays known however many commits are pushed after it: each item's patch push carries its own commit, not the base's tree", async () => {
    // The App remembered the last 4,096 commits GitHub has, by when they were added: a 3,000-item run
    // pushed that many state commits, forgot its base, and from then on every push of a patch commit
    // (whose parent is the base) sent the base's whole tree again, its 500 KB plan.json with it.
    const plan = JSON.stringify({ items: Array.from({ length: 2_000 }, (_, i) => ({ id: `item-${i}`, inputs: { seed: (i * 7_919) % 10_007 } })) });
    const base = await w.sim.push(w.repo.fullName, { branch: 'remembered-base', files: { 'plan.json': plan }, message: 'a large plan' });
    const store = new MirroredGitStore(await RemoteMirror.open(join(dir, 'remembered'), url, () => w.token()), 'refs/agora/', { rememberedCommits: 4 });
    await store.fetch(['+refs/heads/remembered-base:refs/heads/remembered-base']);
    const baseTree = (await store.readCommit(base)).tree;
    const who = agoraIdentity(Date.now());
    let state: string | null = null;
    const patchPushBytes: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      const next = await commitIn(store, `state ${i}`);
      expect(await store.casRef('refs/agora/runs/remembered', next, state)).toBe(true);
      state = next;
      const patch = await store.writeCommit({ tree: baseTree, parents: [base], message: `patch ${i}`, author: who, committer: who });
      await w.sim.settle();
      const before = receivePackPosts().length;
      expect(await store.casRef(`refs/agora/patches/remembered/item-${i}`, patch, null)).toBe(true);
      await w.sim.settle();
      patchPushBytes.push(
        ...receivePackPosts()
          .slice(before)
          .map((r) => r.requestBytes ?? Infinity),
      );
    }
    expect(plan.length).toBeGreaterThan(50_000);
    expect(patchPushBytes).toHaveLength(8);
    for (const bytes of patchPushBytes) expect(bytes).toBeLessThan(1_000);
  });

  it('a remembered commit GitHub lost is sent again once, by git push; GitHub then has it, and the next push is in-process again', async () => {
    const store = new MirroredGitStore(await RemoteMirror.open(join(dir, 'lost'), url, () => w.token()), 'refs/agora/');
    const remote = w.sim.repoDir(w.repo.fullName);
    const who = agoraIdentity(Date.now());
    const child = async (parent: string, text: string) => {
      const tree = await store.writeTree([{ mode: '100644', path: 'f.txt', oid: await store.writeBlob(text), type: 'blob' }]);
      return store.writeCommit({ tree, parents: [parent], message: text, author: who, committer: who });
    };
    /** GitHub loses `refs` and whatever only they reached (as after a force-push and a gc). */
    const lose = async (...refs: string[]) => {
      for (const ref of refs) await git(['update-ref', '-d', ref], remote);
      await git(['reflog', 'expire', '--expire=now', '--all'], remote);
      await git(['gc', '-q', '--prune=now'], remote);
    };
    const x = await commitIn(store, 'x: pushed, then lost by GitHub');
    expect(await store.casRef('refs/agora/runs/lost-1', x, null)).toBe(true);
    await lose('refs/agora/runs/lost-1');
    await expect(git(['cat-file', '-e', x], remote)).rejects.toThrow();
    // The walk stops at x (remembered), so the pack lacks it: GitHub refuses, and git push lands the ref.
    const y = await child(x, 'y on x');
    expect(await store.casRef('refs/agora/runs/lost-2', y, null)).toBe(true);
    expect(store.mirror.cliFallbacks).toBe(1);
    // git push sent x with y: the walk may stop at x again (nothing to forget), and the pack is enough.
    expect(await git(['cat-file', '-t', x], remote)).toMatch(/^commit/);
    const z = await child(x, 'z on x');
    expect(await store.casRef('refs/agora/runs/lost-3', z, null)).toBe(true);
    expect(store.mirror.cliFallbacks).toBe(1);
    expect((await git(['rev-parse', 'refs/agora/runs/lost-3^'], remote)).trim()).toBe(x);
  });
});
