import { createHash } from 'node:crypto';
import { AgoraError, errorMessage } from '../errors.js';
import type { Oid } from '../git/types.js';
import type { Octokit } from './octokit.js';

/**
 * The release that carries one finish of a run: its audit bundle (and Sigstore bundle) as assets, and
 * companions that are not evidence (the run report, release-report.ts): uploaded with the draft like the
 * others, never compared with what a published release holds, never added to one.
 *
 * One release per bundle, tagged `agora-run-<run>-<first 12 hex of the bundle's Merkle root>`: a finish
 * that is tried again (after GitHub refused a later step, or after a restart) computes the same root and
 * finds its own release; a later finish of the same run (a Retry) has more entries, another root and so
 * a release of its own. Nothing depends on deleting a published release's assets, which GitHub refuses
 * for immutable releases (a repository or organisation setting): the release is created as a draft,
 * its assets uploaded, and only then published. Only a draft's assets are ever deleted (a half-finished
 * upload of an earlier try), and nothing is ever added to a published release: when another writer (a
 * replica finishing the same run) published the tag first, this writer deletes its own draft and reports
 * which of its files the published release does not hold byte for byte. A 422 is told apart by its error
 * code: `already_exists` is a concurrent writer (re-read and go on; if that is not enough, the error
 * propagates and the caller's finish is tried again); anything else is GitHub refusing, and becomes a
 * {@link ReleaseRefused} naming GitHub's words, so the gate can say why the bundle is not published.
 */

type Client = { octokit: Octokit; owner: string; repo: string };

export interface ReleaseFile {
  name: string;
  data: string;
  /** The asset's media type (default `application/json`). */
  contentType?: string;
  /**
   * A file that is not evidence (the run report: two writers render it at different moments): uploaded
   * with the draft like the others, but never compared with what a published release holds, so its
   * absence or other bytes there is not a difference, and it is never added to a published release.
   */
  companion?: true;
}

export interface PublishedRelease {
  tag: string;
  url: string;
  /** The names of the release's assets after publishing. */
  assets: string[];
  /** Each uploaded asset's browser download URL, by name. */
  downloads: Record<string, string>;
  /** True when another writer published the tag (before this one looked, or before it could publish its draft). */
  foreign: boolean;
  /** The files given whose bytes the release does not hold (missing, not fully uploaded, or other bytes); empty when it holds them all. */
  differs: string[];
}

/** GitHub declined to write the release (immutable, validation, permission): trying again will not help. */
export class ReleaseRefused extends AgoraError {
  override readonly name: string = 'ReleaseRefused';
  constructor(
    readonly tag: string,
    readonly reason: string,
  ) {
    super(
      'release-refused',
      `GitHub refused to write release ${tag}: ${reason}`,
      'the bundle stays anchored in refs/agora/anchors/<run>, and the App does not try this release again (Re-run plan starts a new run, it does not publish this one): fix what GitHub names, then publish the bundle yourself from a clone that fetched refs/agora/* (`agora orch audit <run>` writes it)',
    );
  }
}

/** The release tag of the bundle whose Merkle root is `root`. */
export function releaseTag(runId: string, root: string): string {
  return `agora-run-${runId}-${root.slice(0, 12)}`;
}

type Release = Awaited<ReturnType<Octokit['rest']['repos']['getRelease']>>['data'];
type Asset = Release['assets'][number];

/** How often one asset's upload is tried again after a concurrent writer changed it. */
const ASSET_ATTEMPTS = 5;

/** The published release of `tag`, or null (GitHub shows drafts by tag to nobody). */
export async function publishedRelease(c: Client, tag: string): Promise<Release | null> {
  try {
    return (await c.octokit.rest.repos.getReleaseByTag({ owner: c.owner, repo: c.repo, tag })).data;
  } catch (e) {
    if (status(e) === 404) return null;
    throw e;
  }
}

/**
 * Publishes `files` as the release `tag` at `target`: a draft of that tag (an earlier try's, found by
 * paging through the releases, or a new one) gets them, then is published. A release of that tag that is
 * already published (another writer's, or an earlier try's) is never changed: it is returned with the
 * files it does not hold. When another writer publishes the tag while this one writes its draft, the
 * draft is deleted and theirs is returned the same way; when another writer found the same draft and
 * published it with its own files, the release is returned with those that are not ours.
 */
export async function publishRelease(
  c: Client & {
    target: Oid;
    title: string;
    body: string;
    /** No earlier try's draft can be older than this (ms since the epoch): the search for it stops at older releases. */
    draftsSince?: number;
  },
  tag: string,
  files: ReleaseFile[],
  /** The published release of `tag` as the caller just read it (null: none), to spare a lookup. */
  known?: Release | null,
): Promise<PublishedRelease> {
  try {
    const published = known !== undefined ? known : await publishedRelease(c, tag);
    if (published) return done(tag, published, true, await lacking(c, published, files));
    const o = { owner: c.owner, repo: c.repo };
    let draft = await findDraft(c, tag, c.draftsSince);
    draft ??= (
      await c.octokit.rest.repos.createRelease({
        ...o,
        tag_name: tag,
        target_commitish: c.target,
        name: c.title,
        body: c.body,
        draft: true,
        prerelease: true,
        make_latest: 'false',
      })
    ).data;
    draft = await addFiles(c, draft, files);
    const mine = new Map(draft.assets.map((a) => [a.name, a.id]));
    try {
      const rel = (await c.octokit.rest.repos.updateRelease({ ...o, release_id: draft.id, draft: false, make_latest: 'false' })).data;
      // Another writer that found the same draft may have replaced our assets and published it first: any
      // asset that is not the one we uploaded is compared (downloaded); ours are known without a request.
      const replaced = evidence(files).filter((f) => rel.assets.find((x) => x.name === f.name)?.id !== mine.get(f.name));
      const differs = replaced.length > 0 ? await lacking(c, rel, replaced) : [];
      return done(tag, rel, differs.length > 0, differs);
    } catch (e) {
      if (!codes(e).includes('already_exists')) throw e;
      // Another writer published this tag meanwhile: theirs stands, ours goes (GitHub never shows it by
      // tag, and nothing may be added to theirs); what theirs holds is compared with our bytes.
      const theirs = await publishedRelease(c, tag);
      if (!theirs) throw e;
      await c.octokit.rest.repos.deleteRelease({ ...o, release_id: draft.id }).catch((err: unknown) => (status(err) === 404 ? undefined : Promise.reject(err)));
      return done(tag, theirs, true, await lacking(c, theirs, files));
    }
  } catch (e) {
    const reason = refusal(e);
    if (reason !== null) throw new ReleaseRefused(tag, reason);
    throw e;
  }
}

function done(tag: string, rel: Release, foreign: boolean, differs: string[]): PublishedRelease {
  return { tag, url: rel.html_url, assets: rel.assets.map((a) => a.name), downloads: assetDownloads(rel.assets), foreign, differs };
}

/** The browser download URL of each fully uploaded asset, by name. */
export function assetDownloads(assets: ReadonlyArray<Pick<Asset, 'name' | 'state' | 'browser_download_url'>>): Record<string, string> {
  return Object.fromEntries(assets.filter((a) => a.state === 'uploaded').map((a) => [a.name, a.browser_download_url]));
}

/** The files whose bytes a published release must hold: all but the companions. */
function evidence(files: ReleaseFile[]): ReleaseFile[] {
  return files.filter((f) => !f.companion);
}

/**
 * An earlier try's draft of `tag`, looked for page by page through the releases, newest first (GitHub
 * lists drafts only there), down to the first page that ends with a release created before `since`.
 */
async function findDraft(c: Client, tag: string, since = -Infinity): Promise<Release | undefined> {
  const pages = c.octokit.paginate.iterator(c.octokit.rest.repos.listReleases, { owner: c.owner, repo: c.repo, per_page: 100 });
  for await (const page of pages) {
    const draft = page.data.find((r) => r.draft && r.tag_name === tag);
    if (draft) return draft;
    const last = page.data.at(-1);
    if (last && Date.parse(last.created_at) < since) return undefined;
  }
  return undefined;
}

/** The names of `files` that `rel` does not hold exactly: no such asset, one not fully uploaded, or other bytes. */
async function lacking(c: Client, rel: Release, files: ReleaseFile[]): Promise<string[]> {
  const out: string[] = [];
  for (const f of evidence(files)) {
    const asset = rel.assets.find((x) => x.name === f.name);
    if (!asset || (await assetHolds(c, asset, Buffer.from(f.data, 'utf8'))) !== true) out.push(f.name);
  }
  return out;
}

/**
 * Uploads the files the draft `rel` lacks. An asset of the same name that does not hold these bytes (a
 * half-finished upload of an earlier try) is deleted first. Returns the draft with its assets as uploaded.
 */
async function addFiles(c: Client, rel: Release, files: ReleaseFile[]): Promise<Release> {
  const o = { owner: c.owner, repo: c.repo };
  for (const f of files) {
    const data = Buffer.from(f.data, 'utf8');
    for (let attempt = 1; ; attempt += 1) {
      const old = rel.assets.find((x) => x.name === f.name);
      if (old && (await assetHolds(c, old, data)) === true) break;
      try {
        if (old)
          await c.octokit.rest.repos.deleteReleaseAsset({ ...o, asset_id: old.id }).catch((e: unknown) => (status(e) === 404 ? undefined : Promise.reject(e)));
        const up = await c.octokit.rest.repos.uploadReleaseAsset({
          ...o,
          release_id: rel.id,
          url: rel.upload_url,
          name: f.name,
          data: f.data,
          headers: { 'content-type': f.contentType ?? 'application/json', 'content-length': data.length },
        });
        rel = { ...rel, assets: [...rel.assets.filter((x) => x.name !== f.name), up.data] };
        break;
      } catch (e) {
        // Only a concurrent writer of the same name is worth another look; any other refusal is final.
        if (!codes(e).includes('already_exists') || attempt >= ASSET_ATTEMPTS) throw e;
        rel = (await c.octokit.rest.repos.getRelease({ ...o, release_id: rel.id })).data;
      }
    }
  }
  return rel;
}

/**
 * Whether an asset already holds exactly `data`, as cheaply as GitHub allows: a different size or an
 * unfinished upload is a difference; a `digest` (`sha256:<hex>`) is compared with ours; only an
 * equal-sized asset without a digest is downloaded and compared byte by byte. `'gone'` when deleted.
 */
async function assetHolds(c: Client, asset: Pick<Asset, 'id' | 'size' | 'state'> & { digest?: string | null }, data: Buffer): Promise<boolean | 'gone'> {
  if (asset.state !== 'uploaded' || asset.size !== data.length) return false;
  if (asset.digest) {
    const [algo, hex] = asset.digest.split(':', 2);
    if (algo === 'sha256' && hex) return hex.toLowerCase() === createHash('sha256').update(data).digest('hex');
  }
  const bytes = await downloadAsset(c, asset.id);
  return bytes === 'gone' ? 'gone' : bytes.equals(data);
}

/**
 * An asset's bytes. GitHub answers the octet-stream request with a 302 to a signed URL on another host
 * (objects.githubusercontent.com); `fetch` follows it and, the origin being another, sends no
 * Authorization header there (the signed URL is the credential; that host refuses a second one).
 * `'gone'` when the asset no longer exists.
 */
export async function downloadAsset(c: Client, assetId: number): Promise<Buffer | 'gone'> {
  try {
    const res = await c.octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
      owner: c.owner,
      repo: c.repo,
      asset_id: assetId,
      headers: { accept: 'application/octet-stream' },
    });
    return Buffer.from(res.data as unknown as ArrayBuffer);
  } catch (e) {
    if (status(e) === 404) return 'gone';
    throw e;
  }
}

function status(e: unknown): number | undefined {
  const s = (e as { status?: unknown }).status;
  return typeof s === 'number' ? s : undefined;
}

/** The `code`s of a GitHub 422's `errors` (`already_exists`, `invalid`, `custom`, …). */
function codes(e: unknown): string[] {
  const errors = (e as { response?: { data?: { errors?: unknown } } }).response?.data?.errors;
  return Array.isArray(errors) ? errors.map((x) => String((x as { code?: unknown }).code ?? '')) : [];
}

/**
 * GitHub's words when it declined the write for good (a 422 other than a concurrent `already_exists`,
 * or a 403 that is no rate limit), else null (worth another try: 5xx, rate limits, the network, a
 * concurrent writer).
 */
function refusal(e: unknown): string | null {
  const s = status(e);
  const data = (e as { response?: { data?: { message?: unknown; errors?: unknown } } }).response?.data;
  const message = typeof data?.message === 'string' ? data.message : errorMessage(e);
  if (s === 403 && /rate limit/i.test(message)) return null;
  // A concurrent writer, not a refusal: the caller's finish is tried again and re-reads what it did.
  if (s === 422 && codes(e).includes('already_exists')) return null;
  if (s !== 422 && s !== 403) return null;
  const details = Array.isArray(data?.errors)
    ? data.errors.map((x) => {
        const err = x as { message?: unknown; code?: unknown; field?: unknown };
        return typeof err.message === 'string' ? err.message : `${String(err.code ?? 'error')}${err.field ? ` (${String(err.field)})` : ''}`;
      })
    : [];
  return [message, ...details].join(': ');
}
