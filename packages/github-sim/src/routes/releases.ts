/**
 * Releases and release assets (uploads host, raw bytes; octet-stream downloads redirected to the objects
 * host). Drafts as GitHub has them: no tag until published, several drafts may name the same tag, only
 * callers with push access see them (listed, or by id; never by tag); a tag belongs to one published
 * release.
 */
import { permits } from '../auth.js';
import { paginate } from './apps.js';
import { HttpError, notFound } from '../http.js';
import { assetJson, releaseJson } from '../shapes.js';
import type { Route, RouteRequest } from '../route.js';
import type { Sim } from '../sim.js';
import type { Asset, Release } from '../state.js';

const MAX_ASSETS = 1000;
const MAX_ASSET_BYTES = 2 * 1024 * 1024 * 1024 - 1;
const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Whether the caller has push access (GitHub shows drafts only to them). */
function seesDrafts(req: RouteRequest): boolean {
  return req.caller.kind === 'installation' && permits(req.caller.token.permissions, { contents: 'write' });
}

function findRelease(req: RouteRequest, sim: Sim): Release {
  const rel = sim.state.releases.get(Number(req.params.release_id));
  if (!rel || rel.repo !== req.repo.fullName || (rel.draft && !seesDrafts(req))) throw notFound();
  return rel;
}

/** GitHub's refusal of any change to an immutable release's assets or tag. */
function immutable(what: string): HttpError {
  return new HttpError(422, 'Validation Failed', {
    errors: [{ resource: 'Release', code: 'custom', field: 'immutable', message: `Cannot ${what} an immutable release.` }],
  });
}

/** A published release of `repo` holding `tag`, other than `except`. */
function publishedWithTag(sim: Sim, repo: string, tag: string, except?: Release): Release | undefined {
  return [...sim.state.releases.values()].find((r) => r.repo === repo && r.tagName === tag && !r.draft && r !== except);
}

/**
 * Release writes of one simulator, one at a time: GitHub decides "who holds this tag" atomically, and the
 * check and the tagging here are separate awaits.
 */
const writing = new WeakMap<Sim, Promise<unknown>>();
function serially<T>(sim: Sim, fn: () => Promise<T>): Promise<T> {
  const next = (writing.get(sim) ?? Promise.resolve()).then(fn, fn);
  writing.set(
    sim,
    next.catch(() => undefined),
  );
  return next;
}

const tagTaken = (): HttpError => new HttpError(422, 'Validation Failed', { errors: [{ resource: 'Release', code: 'already_exists', field: 'tag_name' }] });

/** Creates the release's tag at its target if the tag does not exist yet (publishing). */
async function tagRelease(req: RouteRequest, sim: Sim, tagName: string, targetSha: string): Promise<void> {
  const repo = req.repo;
  const tagRef = `refs/tags/${tagName}`;
  if ((await repo.git.refs()).has(tagRef)) return;
  if (/[\s~^:?*[\\]|\.\.|^-|\.lock$|\/$/.test(tagName) || tagName === '') {
    throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'Release', code: 'invalid', field: 'tag_name' }] });
  }
  const bot = req.caller.app.bot;
  await sim.changeRefs(repo, bot, { name: bot.login, email: `${bot.id}+${bot.login}@users.noreply.github.com` }, async () => {
    await repo.git.updateRef(tagRef, targetSha, null);
  });
}

export const releaseRoutes: Route[] = [
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/releases',
    auth: 'installation',
    permission: { contents: 'read' },
    handle: async (req, sim) => {
      const drafts = seesDrafts(req);
      const list = [...sim.state.releases.values()].filter((r) => r.repo === req.repo.fullName && (drafts || !r.draft)).sort((a, b) => b.id - a.id);
      const { page, headers } = paginate(list, req.query, `${sim.urls.api}/repos/${req.repo.fullName}/releases`);
      return { status: 200, headers, body: page.map((r) => releaseJson(r, sim.urls)) };
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/releases',
    auth: 'installation',
    permission: { contents: 'write' },
    creates: true,
    handle: (req, sim) =>
      serially(sim, async () => {
        const repo = req.repo;
        const body = req.body as {
          tag_name: string;
          target_commitish?: string;
          name?: string | null;
          body?: string | null;
          draft?: boolean;
          prerelease?: boolean;
        };
        const draft = body.draft ?? false;
        // Drafts hold no tag: any number of them may name one; a published release's tag is its own.
        if (!draft && publishedWithTag(sim, repo.fullName, body.tag_name)) throw tagTaken();
        const target = body.target_commitish ?? repo.defaultBranch;
        const targetSha = await repo.git.resolve(target, 'commit');
        if (!targetSha) throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'Release', code: 'invalid', field: 'target_commitish' }] });
        if (!draft) await tagRelease(req, sim, body.tag_name, targetSha);
        const rel: Release = {
          id: sim.state.nextId(),
          repo: repo.fullName,
          tagName: body.tag_name,
          targetCommitish: target,
          name: body.name ?? body.tag_name,
          body: body.body ?? null,
          draft,
          prerelease: body.prerelease ?? false,
          author: req.caller.app.bot,
          createdAt: now(),
          publishedAt: draft ? null : now(),
          assets: [],
          immutable: !draft && repo.immutableReleases === true,
        };
        sim.state.releases.set(rel.id, rel);
        return { status: 201, body: releaseJson(rel, sim.urls), headers: { location: `${sim.urls.api}/repos/${repo.fullName}/releases/${rel.id}` } };
      }),
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/releases/tags/{tag}',
    auth: 'installation',
    permission: { contents: 'read' },
    handle: async (req, sim) => {
      const rel = [...sim.state.releases.values()].find((r) => r.repo === req.repo.fullName && r.tagName === req.params.tag && !r.draft);
      if (!rel) throw notFound();
      return { status: 200, body: releaseJson(rel, sim.urls) };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/releases/assets/{asset_id}',
    auth: 'installation',
    permission: { contents: 'read' },
    handle: async (req, sim) => {
      const asset = sim.state.assets.get(Number(req.params.asset_id));
      const rel = asset ? sim.state.releases.get(asset.releaseId) : undefined;
      if (!asset || !rel || rel.repo !== req.repo.fullName || (rel.draft && !seesDrafts(req))) throw notFound();
      const accept = String(req.headers.accept ?? '');
      if (accept.includes('application/octet-stream')) {
        // As GitHub: a redirect to a signed URL on another host, which serves the bytes.
        asset.downloadCount++;
        return { status: 302, raw: Buffer.alloc(0), headers: { location: sim.objects.signedUrl(asset) } };
      }
      return { status: 200, body: assetJson(asset, rel, sim.urls) };
    },
  },
  {
    method: 'DELETE',
    template: '/repos/{owner}/{repo}/releases/assets/{asset_id}',
    auth: 'installation',
    permission: { contents: 'write' },
    handle: async (req, sim) => {
      const asset = sim.state.assets.get(Number(req.params.asset_id));
      const rel = asset ? sim.state.releases.get(asset.releaseId) : undefined;
      if (!asset || !rel || rel.repo !== req.repo.fullName || (rel.draft && !seesDrafts(req))) throw notFound();
      if (rel.immutable) throw immutable('delete assets of');
      rel.assets = rel.assets.filter((a) => a.id !== asset.id);
      sim.state.assets.delete(asset.id);
      return { status: 204 };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/releases/{release_id}',
    auth: 'installation',
    permission: { contents: 'read' },
    handle: async (req, sim) => ({ status: 200, body: releaseJson(findRelease(req, sim), sim.urls) }),
  },
  {
    // Deletes a release (a draft too, for whoever sees drafts) and its assets; a published release's git tag stays, as on GitHub.
    method: 'DELETE',
    template: '/repos/{owner}/{repo}/releases/{release_id}',
    auth: 'installation',
    permission: { contents: 'write' },
    handle: (req, sim) =>
      serially(sim, async () => {
        const rel = findRelease(req, sim);
        for (const a of rel.assets) sim.state.assets.delete(a.id);
        sim.state.releases.delete(rel.id);
        return { status: 204 };
      }),
  },
  {
    // Edits a release; `draft: false` publishes a draft (tagging its target). A published immutable release
    // keeps its tag and target.
    method: 'PATCH',
    template: '/repos/{owner}/{repo}/releases/{release_id}',
    auth: 'installation',
    permission: { contents: 'write' },
    handle: (req, sim) =>
      serially(sim, async () => {
        const rel = findRelease(req, sim);
        const body = req.body as {
          tag_name?: string;
          target_commitish?: string;
          name?: string | null;
          body?: string | null;
          draft?: boolean;
          prerelease?: boolean;
        };
        if (
          rel.immutable &&
          ((body.tag_name !== undefined && body.tag_name !== rel.tagName) ||
            (body.target_commitish !== undefined && body.target_commitish !== rel.targetCommitish) ||
            body.draft === true)
        ) {
          throw immutable('change the tag, target or draft state of');
        }
        // A release that is (or is being) published takes its tag only if no other published release holds it.
        const publishedAfter = body.draft === false || (body.draft === undefined && !rel.draft);
        if (publishedAfter && publishedWithTag(sim, rel.repo, body.tag_name ?? rel.tagName, rel)) throw tagTaken();
        if (body.tag_name !== undefined) rel.tagName = body.tag_name;
        if (body.target_commitish !== undefined) rel.targetCommitish = body.target_commitish;
        if (body.name !== undefined) rel.name = body.name;
        if (body.body !== undefined) rel.body = body.body;
        if (body.prerelease !== undefined) rel.prerelease = body.prerelease;
        if (body.draft === false && rel.draft) {
          const targetSha = await req.repo.git.resolve(rel.targetCommitish, 'commit');
          if (!targetSha) throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'Release', code: 'invalid', field: 'target_commitish' }] });
          await tagRelease(req, sim, rel.tagName, targetSha);
          rel.draft = false;
          rel.publishedAt = now();
          rel.immutable = req.repo.immutableReleases === true;
        } else if (body.draft === true) {
          rel.draft = true;
          rel.publishedAt = null;
        }
        return { status: 200, body: releaseJson(rel, sim.urls) };
      }),
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/releases/{release_id}/assets',
    auth: 'installation',
    permission: { contents: 'read' },
    handle: async (req, sim) => {
      const rel = findRelease(req, sim);
      return { status: 200, body: rel.assets.map((a) => assetJson(a, rel, sim.urls)) };
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/releases/{release_id}/assets',
    auth: 'installation',
    permission: { contents: 'write' },
    creates: true,
    uploads: true,
    handle: async (req, sim) => {
      const rel = findRelease(req, sim);
      const name = req.query.get('name');
      if (rel.immutable) throw immutable('upload assets to');
      if (!name) throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'missing_field', field: 'name' }] });
      const contentType = String(req.headers['content-type'] ?? '');
      if (!contentType) throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'missing_field', field: 'content_type' }] });
      if (rel.assets.some((a) => a.name === name)) {
        throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }] });
      }
      if (rel.assets.length >= MAX_ASSETS)
        throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'custom', message: 'too many assets' }] });
      if (req.raw.length > MAX_ASSET_BYTES)
        throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'custom', field: 'size' }] });
      const asset: Asset = {
        id: sim.state.nextId(),
        releaseId: rel.id,
        name,
        label: req.query.get('label'),
        contentType,
        data: Buffer.from(req.raw),
        uploader: req.caller.app.bot,
        createdAt: now(),
        downloadCount: 0,
      };
      rel.assets.push(asset);
      sim.state.assets.set(asset.id, asset);
      return { status: 201, body: assetJson(asset, rel, sim.urls) };
    },
  },
];
