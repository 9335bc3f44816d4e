/** Releases and release assets (uploads host, raw bytes; octet-stream downloads). */
import { HttpError, notFound } from '../http.js';
import { assetJson, releaseJson } from '../shapes.js';
import type { Route, RouteRequest } from '../route.js';
import type { Sim } from '../sim.js';
import type { Asset, Release } from '../state.js';

const MAX_ASSETS = 1000;
const MAX_ASSET_BYTES = 2 * 1024 * 1024 * 1024 - 1;
const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

function findRelease(req: RouteRequest, sim: Sim): Release {
  const rel = sim.state.releases.get(Number(req.params.release_id));
  if (!rel || rel.repo !== req.repo.fullName) throw notFound();
  return rel;
}

export const releaseRoutes: Route[] = [
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/releases',
    auth: 'installation',
    permission: { contents: 'read' },
    handle: async (req, sim) => {
      const list = [...sim.state.releases.values()].filter((r) => r.repo === req.repo.fullName).sort((a, b) => b.id - a.id);
      return { status: 200, body: list.map((r) => releaseJson(r, sim.urls)) };
    },
  },
  {
    method: 'POST',
    template: '/repos/{owner}/{repo}/releases',
    auth: 'installation',
    permission: { contents: 'write' },
    creates: true,
    handle: async (req, sim) => {
      const repo = req.repo;
      const body = req.body as { tag_name: string; target_commitish?: string; name?: string | null; body?: string | null; draft?: boolean; prerelease?: boolean };
      if ([...sim.state.releases.values()].some((r) => r.repo === repo.fullName && r.tagName === body.tag_name)) {
        throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'Release', code: 'already_exists', field: 'tag_name' }] });
      }
      const target = body.target_commitish ?? repo.defaultBranch;
      const tagRef = `refs/tags/${body.tag_name}`;
      const draft = body.draft ?? false;
      const targetSha = await repo.git.resolve(target, 'commit');
      if (!targetSha) throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'Release', code: 'invalid', field: 'target_commitish' }] });
      if (!draft && !(await repo.git.refs()).has(tagRef)) {
        if (/[\s~^:?*[\\]|\.\.|^-|\.lock$|\/$/.test(body.tag_name) || body.tag_name === '') {
          throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'Release', code: 'invalid', field: 'tag_name' }] });
        }
        const bot = req.caller.app.bot;
        await sim.changeRefs(repo, bot, { name: bot.login, email: `${bot.id}+${bot.login}@users.noreply.github.com` }, async () => {
          await repo.git.updateRef(tagRef, targetSha, null);
        });
      }
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
      };
      sim.state.releases.set(rel.id, rel);
      return { status: 201, body: releaseJson(rel, sim.urls), headers: { location: `${sim.urls.api}/repos/${repo.fullName}/releases/${rel.id}` } };
    },
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
      if (!asset || !rel || rel.repo !== req.repo.fullName) throw notFound();
      const accept = String(req.headers.accept ?? '');
      if (accept.includes('application/octet-stream')) {
        asset.downloadCount++;
        return {
          status: 200,
          raw: asset.data,
          headers: { 'content-type': 'application/octet-stream', 'content-disposition': `attachment; filename=${encodeURIComponent(asset.name)}` },
        };
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
      if (!asset || !rel || rel.repo !== req.repo.fullName) throw notFound();
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
      if (!name) throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'missing_field', field: 'name' }] });
      const contentType = String(req.headers['content-type'] ?? '');
      if (!contentType) throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'missing_field', field: 'content_type' }] });
      if (rel.assets.some((a) => a.name === name)) {
        throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }] });
      }
      if (rel.assets.length >= MAX_ASSETS) throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'custom', message: 'too many assets' }] });
      if (req.raw.length > MAX_ASSET_BYTES) throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'ReleaseAsset', code: 'custom', field: 'size' }] });
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
