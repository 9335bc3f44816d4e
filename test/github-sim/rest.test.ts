import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorld, type World } from '@agora/github-sim/harness';

describe('REST subset: repos, contents, git data, pulls, releases', () => {
  let w: World;
  const o = { owner: 'octo', repo: 'demo' };
  beforeAll(async () => {
    w = await startWorld({ files: { 'README.md': '# demo\n', 'src/a.txt': 'a\n', 'src/b.txt': 'b\n' } });
  });
  afterAll(async () => {
    expect(w.sim.contractViolations.filter((v) => v.kind !== 'request')).toEqual([]);
    await w.close();
  });

  it('gets the repository and file/directory contents', async () => {
    const repo = await w.octokit.repos.get(o);
    expect(repo.data).toMatchObject({ full_name: 'octo/demo', default_branch: 'main', clone_url: `${w.sim.gitUrl}/octo/demo.git` });
    const file = await w.octokit.repos.getContent({ ...o, path: 'src/a.txt' });
    const data = file.data as { content: string; encoding: string; type: string };
    expect(data.type).toBe('file');
    expect(Buffer.from(data.content, 'base64').toString()).toBe('a\n');
    const dir = await w.octokit.repos.getContent({ ...o, path: 'src' });
    expect((dir.data as { name: string }[]).map((e) => e.name)).toEqual(['a.txt', 'b.txt']);
    await expect(w.octokit.repos.getContent({ ...o, path: 'missing.txt' })).rejects.toMatchObject({ status: 404 });
    const root = await w.octokit.repos.getContent({ ...o, path: '' });
    expect((root.data as { path: string; type: string }[]).map((e) => `${e.type}:${e.path}`)).toEqual(['file:README.md', 'dir:src']);
    const atRef = await w.octokit.repos.getContent({ ...o, path: 'src/a.txt', ref: w.repo.headSha });
    expect((atRef.data as { sha: string }).sha).toMatch(/^[0-9a-f]{40}$/);
  });

  it('builds a commit from blobs and trees (base_tree, inline content, deletion) and moves refs with fast-forward checks', async () => {
    const blob = await w.octokit.git.createBlob({ ...o, content: Buffer.from('binary\0data').toString('base64'), encoding: 'base64' });
    expect(blob.status).toBe(201);
    const got = await w.octokit.git.getBlob({ ...o, file_sha: blob.data.sha });
    expect(Buffer.from(got.data.content, 'base64').toString()).toBe('binary\0data');
    const head = await w.octokit.git.getCommit({ ...o, commit_sha: w.repo.headSha });
    const tree = await w.octokit.git.createTree({
      ...o,
      base_tree: head.data.tree.sha,
      tree: [
        { path: 'src/bin.dat', mode: '100644', type: 'blob', sha: blob.data.sha },
        { path: 'deep/new/file.txt', mode: '100644', type: 'blob', content: 'inline\n' },
        { path: 'src/b.txt', mode: '100644', type: 'blob', sha: null },
      ],
    });
    expect(tree.status).toBe(201);
    const full = await w.octokit.git.getTree({ ...o, tree_sha: tree.data.sha, recursive: 'true' });
    const paths = full.data.tree.filter((e) => e.type === 'blob').map((e) => e.path);
    expect(paths.sort()).toEqual(['README.md', 'deep/new/file.txt', 'src/a.txt', 'src/bin.dat']);
    const commit = await w.octokit.git.createCommit({ ...o, message: 'api commit', tree: tree.data.sha, parents: [w.repo.headSha] });
    expect(commit.data.parents.map((p) => p.sha)).toEqual([w.repo.headSha]);
    expect(commit.data.author.name).toBe(`${w.app.slug}[bot]`);

    const created = await w.octokit.git.createRef({ ...o, ref: 'refs/agora/patches/r1/a', sha: commit.data.sha });
    expect(created.status).toBe(201);
    await expect(w.octokit.git.createRef({ ...o, ref: 'refs/agora/patches/r1/a', sha: commit.data.sha })).rejects.toMatchObject({ status: 422 });
    await expect(w.octokit.git.createRef({ ...o, ref: 'refs/onlyone', sha: commit.data.sha })).rejects.toMatchObject({ status: 422 });
    await expect(w.octokit.git.createRef({ ...o, ref: 'refs/heads/x', sha: 'f'.repeat(40) })).rejects.toMatchObject({ status: 422 });

    const ff = await w.octokit.git.updateRef({ ...o, ref: 'heads/main', sha: commit.data.sha });
    expect(ff.data.object.sha).toBe(commit.data.sha);
    const rewind = w.octokit.git.updateRef({ ...o, ref: 'heads/main', sha: w.repo.headSha });
    await expect(rewind).rejects.toMatchObject({ status: 422, response: { data: { message: 'Update is not a fast forward' } } });
    const forced = await w.octokit.git.updateRef({ ...o, ref: 'heads/main', sha: w.repo.headSha, force: true });
    expect(forced.data.object.sha).toBe(w.repo.headSha);
    const one = await w.octokit.git.getRef({ ...o, ref: 'agora/patches/r1/a' });
    expect(one.data.object).toMatchObject({ sha: commit.data.sha, type: 'commit' });
    expect((await w.octokit.git.deleteRef({ ...o, ref: 'agora/patches/r1/a' })).status).toBe(204);
    await expect(w.octokit.git.getRef({ ...o, ref: 'agora/patches/r1/a' })).rejects.toMatchObject({ status: 404 });
    await expect(w.octokit.git.deleteRef({ ...o, ref: 'agora/patches/r1/a' })).rejects.toMatchObject({ status: 422 });
    await w.sim.settle();
    const pushes = w.receiver.received.filter((r) => r.name === 'push' && r.payload.ref === 'refs/heads/main');
    expect(pushes.map((p) => p.payload.forced)).toEqual([false, true]);
  });

  it('creates, lists and gets pull requests and their commits', async () => {
    const c1 = await w.sim.push('octo/demo', { branch: 'topic', files: { 'x.txt': '1' }, message: 'one' });
    const c2 = await w.sim.push('octo/demo', { branch: 'topic', files: { 'x.txt': '2', 'src/a.txt': null }, message: 'two' });
    const pr = await w.octokit.pulls.create({ ...o, head: 'topic', base: 'main', title: 'Topic', body: 'b' });
    expect(pr.status).toBe(201);
    expect(pr.data).toMatchObject({ state: 'open', head: { ref: 'topic', sha: c2 }, base: { ref: 'main' }, commits: 2, changed_files: 2 });
    await expect(w.octokit.pulls.create({ ...o, head: 'topic', base: 'main', title: 'again' })).rejects.toMatchObject({ status: 422 });
    await expect(w.octokit.pulls.create({ ...o, head: 'nope', base: 'main', title: 'x' })).rejects.toMatchObject({ status: 422 });
    const list = await w.octokit.pulls.list({ ...o, head: 'octo:topic' });
    expect(list.data.map((p) => p.number)).toEqual([pr.data.number]);
    const commits = await w.octokit.pulls.listCommits({ ...o, pull_number: pr.data.number });
    expect(commits.data.map((c) => c.sha)).toEqual([c1, c2]);
    const closed = await w.octokit.pulls.update({ ...o, pull_number: pr.data.number, state: 'closed' });
    expect(closed.data.state).toBe('closed');
    await w.octokit.pulls.update({ ...o, pull_number: pr.data.number, state: 'open' });
    await w.sim.settle();
    const actions = w.receiver.received.filter((r) => r.name === 'pull_request').map((r) => r.payload.action);
    expect(actions).toEqual(['opened', 'closed', 'reopened']);
  });

  it('creates releases, uploads raw assets on the uploads host, refuses duplicates, downloads bytes', async () => {
    const rel = await w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-r1', name: 'run r1' });
    expect(rel.status).toBe(201);
    expect(rel.data.upload_url.startsWith(w.sim.uploadsUrl)).toBe(true);
    await expect(w.octokit.repos.createRelease({ ...o, tag_name: 'agora-run-r1' })).rejects.toMatchObject({ status: 422 });
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252]);
    const up = await w.octokit.repos.uploadReleaseAsset({
      ...o,
      release_id: rel.data.id,
      url: rel.data.upload_url,
      name: 'audit.json',
      data: bytes as unknown as string,
      headers: { 'content-type': 'application/octet-stream', 'content-length': bytes.length },
    });
    expect(up.status).toBe(201);
    expect(up.data).toMatchObject({ name: 'audit.json', size: 6, state: 'uploaded' });
    await expect(
      w.octokit.repos.uploadReleaseAsset({
        ...o,
        release_id: rel.data.id,
        url: rel.data.upload_url,
        name: 'audit.json',
        data: 'x',
        headers: { 'content-type': 'text/plain' },
      }),
    ).rejects.toMatchObject({ status: 422, response: { data: { errors: [{ code: 'already_exists' }] } } });
    const byTag = await w.octokit.repos.getReleaseByTag({ ...o, tag: 'agora-run-r1' });
    expect(byTag.data.assets.map((a) => a.name)).toEqual(['audit.json']);
    const assets = await w.octokit.repos.listReleaseAssets({ ...o, release_id: rel.data.id });
    expect(assets.data).toHaveLength(1);
    const dl = await w.octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
      ...o,
      asset_id: up.data.id,
      headers: { accept: 'application/octet-stream' },
    });
    expect(Buffer.from(dl.data as unknown as ArrayBuffer).equals(bytes)).toBe(true);
    const tag = await w.octokit.git.getRef({ ...o, ref: 'tags/agora-run-r1' });
    expect(tag.data.object.sha).toBe((await w.octokit.git.getRef({ ...o, ref: 'heads/main' })).data.object.sha);
    expect((await w.octokit.repos.listReleases(o)).data.map((r) => r.tag_name)).toEqual(['agora-run-r1']);
    expect((await w.octokit.repos.getRelease({ ...o, release_id: rel.data.id })).data.id).toBe(rel.data.id);
  });

  it('sends rate-limit headers everywhere and answers a matching If-None-Match with 304 that does not count', async () => {
    const token = await w.token();
    const h = { authorization: `token ${token}` };
    const first = await fetch(`${w.sim.apiUrl}/repos/octo/demo`, { headers: h });
    await first.text();
    for (const name of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'x-ratelimit-used', 'x-ratelimit-resource']) {
      expect(first.headers.get(name), name).toBeTruthy();
    }
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^W\/"/);
    const used = Number(first.headers.get('x-ratelimit-used'));
    const second = await fetch(`${w.sim.apiUrl}/repos/octo/demo`, { headers: { ...h, 'if-none-match': etag } });
    expect(second.status).toBe(304);
    expect(await second.text()).toBe('');
    expect(Number(second.headers.get('x-ratelimit-used'))).toBe(used);
    const missing = await fetch(`${w.sim.apiUrl}/nope/nothing`, { headers: h });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-ratelimit-limit')).toBeTruthy();
    const rl = await w.octokit.rateLimit.get();
    expect(rl.data.rate.limit).toBe(5000);
  });

  it('answers malformed JSON with 400, schema-invalid bodies with 422, unknown routes with 404', async () => {
    const token = await w.token();
    const h = { authorization: `token ${token}`, 'content-type': 'application/json' };
    const bad = await fetch(`${w.sim.apiUrl}/repos/octo/demo/check-runs`, { method: 'POST', headers: h, body: '{"name": ' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ message: 'Problems parsing JSON', documentation_url: expect.any(String), status: '400' });
    const invalid = await fetch(`${w.sim.apiUrl}/repos/octo/demo/git/refs`, { method: 'POST', headers: h, body: '{"ref": 5}' });
    expect(invalid.status).toBe(422);
    expect(((await invalid.json()) as { message: string }).message).toMatch(/^Invalid request/);
    const unknown = await fetch(`${w.sim.apiUrl}/repos/octo/demo/wiki`, { headers: h });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { message: string }).message).toBe('Not Found');
    const log = w.sim.requests.filter((r) => r.path === '/repos/octo/demo/check-runs' && r.status === 400);
    expect(log[0]).toMatchObject({ method: 'POST', route: '/repos/{owner}/{repo}/check-runs', write: true, contentCreation: true });
  });
});
