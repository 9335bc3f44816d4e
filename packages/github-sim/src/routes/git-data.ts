/** Repository, contents and git data (blobs, trees, commits, refs), all on the bare repo via the git CLI. */
import { HttpError, notFound } from '../http.js';
import { fullRepoJson, gitCommitJson, gitRefJson, nodeId } from '../shapes.js';
import { ZERO_SHA, type GitIdentity } from '../git.js';
import type { Route, RouteRequest } from '../route.js';
import type { Sim } from '../sim.js';
import type { Repo } from '../state.js';

const READ = { contents: 'read' } as const;
const WRITE = { contents: 'write' } as const;

/** Base64 wrapped at 60 columns, as GitHub returns blob and file content. */
const wrap64 = (buf: Buffer): string => (buf.toString('base64').match(/.{1,60}/g) ?? ['']).join('\n') + '\n';

const SHA = /^[0-9a-f]{40}$/;

function botIdentity(req: RouteRequest): GitIdentity {
  const bot = req.caller.app.bot;
  return { name: bot.login, email: `${bot.id}+${bot.login}@users.noreply.github.com` };
}

async function refJson(repo: Repo, ref: string, sha: string, sim: Sim): Promise<Record<string, unknown>> {
  const type = (await repo.git.objectType(sha)) ?? 'commit';
  return gitRefJson(ref, sha, type, repo.fullName, sim.urls);
}

function treeEntryJson(repo: Repo, e: { mode: string; type: string; sha: string; size: number | null; path: string }, sim: Sim): Record<string, unknown> {
  const json: Record<string, unknown> = { path: e.path, mode: e.mode, type: e.type, sha: e.sha };
  if (e.type === 'blob') {
    json.size = e.size ?? 0;
    json.url = `${sim.urls.api}/repos/${repo.fullName}/git/blobs/${e.sha}`;
  } else if (e.type === 'tree') {
    json.url = `${sim.urls.api}/repos/${repo.fullName}/git/trees/${e.sha}`;
  }
  return json;
}

async function treeJson(repo: Repo, sha: string, recursive: boolean, sim: Sim): Promise<Record<string, unknown>> {
  const entries = await repo.git.lsTree(sha, recursive);
  return {
    sha,
    url: `${sim.urls.api}/repos/${repo.fullName}/git/trees/${sha}`,
    tree: entries.map((e) => treeEntryJson(repo, e, sim)),
    truncated: false,
  };
}

/** A fully qualified ref from the `{ref}` path parameter (`heads/main` → `refs/heads/main`). */
const qualify = (ref: string): string => (ref.startsWith('refs/') ? ref : `refs/${ref}`);

function validRefName(ref: string): boolean {
  return (
    ref.startsWith('refs/') &&
    ref.split('/').length >= 3 &&
    !ref.split('/').some((c) => c === '' || c.startsWith('.') || c.endsWith('.lock')) &&
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    !/[\x00-\x20~^:?*[\\\x7f]|\.\.|@\{|\/$/.test(ref)
  );
}

export const gitDataRoutes: Route[] = [
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}',
    auth: 'installation',
    permission: { metadata: 'read' },
    handle: async (req, sim) => ({ status: 200, body: fullRepoJson(req.repo, sim.urls) }),
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/contents/{path}',
    auth: 'installation',
    permission: READ,
    handle: async (req, sim) => {
      const repo = req.repo;
      const ref = req.query.get('ref') ?? repo.defaultBranch;
      const commit = await repo.git.resolve(ref, 'commit');
      if (!commit) throw new HttpError(404, `No commit found for the ref ${ref}`);
      const path = req.params.path!.replace(/^\/+|\/+$/g, '');
      let type: string | undefined;
      let sha: string | undefined;
      let size: string | undefined;
      if (path === '') {
        type = 'tree';
        sha = (await repo.git.resolve(commit, 'tree'))!;
      } else {
        const listing = await repo.git.text(['ls-tree', '-l', '-z', commit, '--', path]);
        const line = listing.split('\0').find((l) => l.endsWith(`\t${path}`));
        if (!line) throw notFound();
        [, type, sha, size] = line.slice(0, line.indexOf('\t')).split(/\s+/);
      }
      const a = `${sim.urls.api}/repos/${repo.fullName}`;
      const item = (p: string, t: string, s: string, sz: number): Record<string, unknown> => {
        const self = `${a}/contents/${p}?ref=${encodeURIComponent(ref)}`;
        const gitUrl = t === 'dir' ? `${a}/git/trees/${s}` : `${a}/git/blobs/${s}`;
        const html = `${sim.urls.html}/${repo.fullName}/${t === 'dir' ? 'tree' : 'blob'}/${ref}/${p}`;
        return {
          type: t,
          size: sz,
          name: p.split('/').pop()!,
          path: p,
          sha: s,
          url: self,
          git_url: gitUrl,
          html_url: html,
          download_url: t === 'file' ? `${sim.urls.html}/raw/${repo.fullName}/${ref}/${p}` : null,
          _links: { self, git: gitUrl, html },
        };
      };
      if (type === 'tree') {
        const children = await repo.git.lsTree(sha!, false);
        return {
          status: 200,
          body: children.map((c) =>
            item(path ? `${path}/${c.path}` : c.path, c.type === 'tree' ? 'dir' : c.type === 'commit' ? 'submodule' : 'file', c.sha, c.size ?? 0),
          ),
        };
      }
      if (type !== 'blob') throw notFound();
      const content = await repo.git.readBlob(sha!);
      return { status: 200, body: { ...item(path, 'file', sha!, Number(size)), content: wrap64(content), encoding: 'base64' } };
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/git/blobs',
    auth: 'installation',
    permission: WRITE,
    handle: async (req, sim) => {
      const body = req.body as { content: string; encoding?: string };
      const encoding = body.encoding ?? 'utf-8';
      if (encoding !== 'utf-8' && encoding !== 'utf8' && encoding !== 'base64') {
        throw new HttpError(422, `encoding must be utf-8 or base64`);
      }
      const data = encoding === 'base64' ? Buffer.from(body.content, 'base64') : Buffer.from(body.content, 'utf8');
      const sha = await req.repo.git.writeBlob(data);
      return { status: 201, body: { url: `${sim.urls.api}/repos/${req.repo.fullName}/git/blobs/${sha}`, sha } };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/git/blobs/{file_sha}',
    auth: 'installation',
    permission: READ,
    handle: async (req, sim) => {
      const sha = req.params.file_sha!;
      if ((await req.repo.git.objectType(sha)) !== 'blob') throw notFound();
      const data = await req.repo.git.readBlob(sha);
      return {
        status: 200,
        body: {
          sha,
          node_id: nodeId('Blob', sha),
          size: data.length,
          url: `${sim.urls.api}/repos/${req.repo.fullName}/git/blobs/${sha}`,
          content: wrap64(data),
          encoding: 'base64',
        },
      };
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/git/trees',
    auth: 'installation',
    permission: WRITE,
    handle: async (req, sim) => {
      const repo = req.repo;
      const body = req.body as { base_tree?: string; tree: { path?: string; mode?: string; type?: string; sha?: string | null; content?: string }[] };
      let base: string | null = null;
      if (body.base_tree) {
        base = SHA.test(body.base_tree) ? await repo.git.resolve(body.base_tree, 'tree') : null;
        if (!base) throw new HttpError(422, 'Invalid tree info', { errors: ['base_tree is not a valid tree oid'] });
      }
      const changes = [];
      for (const [i, e] of body.tree.entries()) {
        if (!e.path || e.path.startsWith('/') || e.path.endsWith('/') || e.path.split('/').some((c) => c === '' || c === '.' || c === '..' || c === '.git')) {
          throw new HttpError(422, `tree.path contains a malformed path component`, { errors: [`tree[${i}].path`] });
        }
        if (e.sha !== undefined && e.content !== undefined) {
          throw new HttpError(422, 'Invalid tree info', { errors: [`tree[${i}] must have either sha or content, not both`] });
        }
        const mode = e.mode ?? '100644';
        if (e.sha === null) {
          changes.push({ path: e.path, sha: null });
        } else if (e.content !== undefined) {
          changes.push({ path: e.path, mode, content: Buffer.from(e.content, 'utf8') });
        } else if (e.sha !== undefined) {
          const t = await repo.git.objectType(e.sha);
          const wanted = e.type ?? (mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : 'blob');
          if (wanted !== 'commit' && t !== wanted) {
            throw new HttpError(422, `GitRPC::BadObjectState`, { errors: [`tree.sha ${e.sha} is not a valid ${wanted}`] });
          }
          if (wanted === 'tree') {
            for (const sub of await repo.git.lsTree(e.sha, true)) {
              if (sub.type !== 'tree') changes.push({ path: `${e.path}/${sub.path}`, mode: sub.mode, sha: sub.sha });
            }
          } else {
            changes.push({ path: e.path, mode, sha: e.sha });
          }
        } else {
          throw new HttpError(422, 'Invalid tree info', { errors: [`tree[${i}] needs sha or content`] });
        }
      }
      const sha = await repo.git.buildTree(base, changes);
      return { status: 201, body: await treeJson(repo, sha, false, sim) };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/git/trees/{tree_sha}',
    auth: 'installation',
    permission: READ,
    handle: async (req, sim) => {
      const sha = await req.repo.git.resolve(req.params.tree_sha!, 'tree');
      if (!sha) throw notFound();
      const recursive = ['1', 'true'].includes(req.query.get('recursive') ?? '');
      return { status: 200, body: await treeJson(req.repo, sha, recursive, sim) };
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/git/commits',
    auth: 'installation',
    permission: WRITE,
    creates: true,
    handle: async (req, sim) => {
      const repo = req.repo;
      const body = req.body as { message: string; tree: string; parents?: string[]; author?: GitIdentity; committer?: GitIdentity };
      if ((await repo.git.objectType(body.tree)) !== 'tree') throw new HttpError(422, 'Tree SHA does not exist');
      for (const p of body.parents ?? []) {
        if ((await repo.git.objectType(p)) !== 'commit') throw new HttpError(422, 'Parent SHA does not exist or is not a commit object');
      }
      const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      const author = body.author ? { ...body.author, date: body.author.date ?? now } : { ...botIdentity(req), date: now };
      const committer = body.committer ? { ...body.committer, date: body.committer.date ?? author.date } : author;
      const sha = await repo.git.commitTree(body.tree, body.parents ?? [], body.message, author, committer);
      return { status: 201, body: gitCommitJson(await repo.git.readCommit(sha), repo.fullName, sim.urls) };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/git/commits/{commit_sha}',
    auth: 'installation',
    permission: READ,
    handle: async (req, sim) => {
      const sha = req.params.commit_sha!;
      if ((await req.repo.git.objectType(sha)) !== 'commit') throw notFound();
      return { status: 200, body: gitCommitJson(await req.repo.git.readCommit(sha), req.repo.fullName, sim.urls) };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/git/ref/{ref}',
    auth: 'installation',
    permission: READ,
    handle: async (req, sim) => {
      const ref = qualify(req.params.ref!);
      const sha = (await req.repo.git.refs()).get(ref);
      if (!sha) throw notFound();
      return { status: 200, body: await refJson(req.repo, ref, sha, sim) };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/git/matching-refs/{ref}',
    auth: 'installation',
    permission: READ,
    handle: async (req, sim) => {
      const prefix = qualify(req.params.ref!);
      const refs = [...(await req.repo.git.refs())].filter(([r]) => r.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1));
      return { status: 200, body: await Promise.all(refs.map(([r, s]) => refJson(req.repo, r, s, sim))) };
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/git/refs',
    auth: 'installation',
    permission: WRITE,
    creates: true,
    handle: async (req, sim) => {
      const repo = req.repo;
      const body = req.body as { ref: string; sha: string };
      if (!validRefName(body.ref)) throw new HttpError(422, "Reference name must start with 'refs/' and have at least two slashes.");
      if (!SHA.test(body.sha) || !(await repo.git.objectType(body.sha))) throw new HttpError(422, 'Object does not exist');
      const bot = req.caller.app.bot;
      await sim.changeRefs(repo, bot, { name: bot.login, email: `${bot.id}+${bot.login}@users.noreply.github.com` }, async () => {
        if ((await repo.git.refs()).has(body.ref)) throw new HttpError(422, 'Reference already exists');
        await repo.git.updateRef(body.ref, body.sha, null);
      });
      return {
        status: 201,
        body: await refJson(repo, body.ref, body.sha, sim),
        headers: { location: `${sim.urls.api}/repos/${repo.fullName}/git/${body.ref}` },
      };
    },
  },
  {
    method: 'PATCH',
    template: '/repos/{owner}/{repo}/git/refs/{ref}',
    auth: 'installation',
    permission: WRITE,
    handle: async (req, sim) => {
      const repo = req.repo;
      const ref = qualify(req.params.ref!);
      const body = req.body as { sha: string; force?: boolean };
      if (!SHA.test(body.sha) || !(await repo.git.objectType(body.sha))) throw new HttpError(422, 'Object does not exist');
      const bot = req.caller.app.bot;
      await sim.changeRefs(repo, bot, { name: bot.login, email: `${bot.id}+${bot.login}@users.noreply.github.com` }, async () => {
        const current = (await repo.git.refs()).get(ref);
        if (!current) throw new HttpError(422, 'Reference does not exist');
        if (!body.force && current !== body.sha && !(await repo.git.isAncestor(current, body.sha))) {
          throw new HttpError(422, 'Update is not a fast forward');
        }
        await repo.git.updateRef(ref, body.sha, current);
      });
      return { status: 200, body: await refJson(repo, ref, body.sha, sim) };
    },
  },
  {
    method: 'DELETE',
    template: '/repos/{owner}/{repo}/git/refs/{ref}',
    auth: 'installation',
    permission: WRITE,
    handle: async (req, sim) => {
      const repo = req.repo;
      const ref = qualify(req.params.ref!);
      const bot = req.caller.app.bot;
      await sim.changeRefs(repo, bot, { name: bot.login, email: `${bot.id}+${bot.login}@users.noreply.github.com` }, async () => {
        const current = (await repo.git.refs()).get(ref);
        if (!current) throw new HttpError(422, 'Reference does not exist');
        await repo.git.updateRef(ref, null, current);
      });
      return { status: 204 };
    },
  },
];

export { ZERO_SHA };
