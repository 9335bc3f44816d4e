import { createHash } from 'node:crypto';
import { AgoraError } from '../errors.js';
import type { Oid } from '../git/types.js';
import type { Octokit } from './octokit.js';

/**
 * The release that carries one finish of a run: its audit bundle (and Sigstore bundle) as assets.
 *
 * One release per bundle, tagged `agora-run-<run>-<first 12 hex of the bundle's Merkle root>`: a finish
 * that is tried again (after GitHub refused a later step, or after a restart) computes the same root and
 * finds its own release; a later finish of the same run (a Retry) has more entries, another root and so
 * a release of its own. Nothing depends on deleting a published release's assets, which GitHub refuses
 * for immutable releases (a repository or organisation setting): the release is created as a draft,
 * its assets uploaded, and only then published. Only a draft's assets are ever deleted (a half-finished
 * upload of an earlier try). A 422 is told apart by its error code: `already_exists` is a concurrent
 * writer (re-read and go on); anything else is GitHub refusing, and becomes a {@link ReleaseRefused}
 * naming GitHub's words, so the gate can say why the bundle is not published.
 */

type Client = { octokit: Octokit; owner: string; repo: string };

export interface ReleaseFile {
  name: string;
  data: string;
}

export interface PublishedRelease {
  tag: string;
  url: string;
  /** The names of the release's assets after publishing. */
  assets: string[];
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
      'the bundle stays anchored in refs/agora/anchors/<run>; fix what GitHub names (e.g. an immutable release of that tag without the bundle) and press Re-run plan',
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
 * Publishes `files` as the release `tag` at `target`: a published release of that tag gets the files it
 * lacks (and keeps what it has); otherwise a draft of that tag (an earlier try's, found in the newest
 * releases, or a new one) gets them, then is published. When another writer published the tag first,
 * theirs is the release.
 */
export async function publishRelease(
  c: Client & { target: Oid; title: string; body: string },
  tag: string,
  files: ReleaseFile[],
  /** The published release of `tag` as the caller just read it (null: none), to spare a lookup. */
  known?: Release | null,
): Promise<PublishedRelease> {
  try {
    const published = known !== undefined ? known : await publishedRelease(c, tag);
    if (published) return done(tag, await addFiles(c, published, files, false));
    const o = { owner: c.owner, repo: c.repo };
    let draft = (await c.octokit.rest.repos.listReleases({ ...o, per_page: 100 })).data.find((r) => r.draft && r.tag_name === tag);
    draft ??= (await c.octokit.rest.repos.createRelease({ ...o, tag_name: tag, target_commitish: c.target, name: c.title, body: c.body, draft: true, prerelease: true, make_latest: 'false' })).data;
    draft = await addFiles(c, draft, files, true);
    try {
      return done(tag, (await c.octokit.rest.repos.updateRelease({ ...o, release_id: draft.id, draft: false, make_latest: 'false' })).data);
    } catch (e) {
      if (!codes(e).includes('already_exists')) throw e;
      // Published by another writer of the same bundle meanwhile: theirs stands (our draft stays unseen).
      const theirs = await publishedRelease(c, tag);
      if (!theirs) throw e;
      return done(tag, await addFiles(c, theirs, files, false));
    }
  } catch (e) {
    const reason = refusal(e);
    if (reason !== null) throw new ReleaseRefused(tag, reason);
    throw e;
  }
}

function done(tag: string, rel: Release): PublishedRelease {
  return { tag, url: rel.html_url, assets: rel.assets.map((a) => a.name) };
}

/**
 * Uploads the files `rel` lacks. On a draft (`replace`), an asset of the same name that does not hold
 * these bytes (a half-finished upload of an earlier try) is deleted first; a published release's assets
 * are never deleted. Returns the release with its assets as uploaded.
 */
async function addFiles(c: Client, rel: Release, files: ReleaseFile[], replace: boolean): Promise<Release> {
  const o = { owner: c.owner, repo: c.repo };
  for (const f of files) {
    const data = Buffer.from(f.data, 'utf8');
    for (let attempt = 1; ; attempt += 1) {
      const old = rel.assets.find((x) => x.name === f.name);
      if (old && (!replace || (await assetHolds(c, old, data)) === true)) break;
      try {
        if (old) await c.octokit.rest.repos.deleteReleaseAsset({ ...o, asset_id: old.id }).catch((e: unknown) => (status(e) === 404 ? undefined : Promise.reject(e)));
        const up = await c.octokit.rest.repos.uploadReleaseAsset({
          ...o,
          release_id: rel.id,
          url: rel.upload_url,
          name: f.name,
          data: f.data,
          headers: { 'content-type': 'application/json', 'content-length': data.length },
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
 * or a 403 that is no rate limit), else null (worth another try: 5xx, rate limits, the network).
 */
function refusal(e: unknown): string | null {
  const s = status(e);
  const data = (e as { response?: { data?: { message?: unknown; errors?: unknown } } }).response?.data;
  const message = typeof data?.message === 'string' ? data.message : (e as Error).message;
  if (s === 403 && /rate limit/i.test(message)) return null;
  if (s !== 422 && s !== 403) return null;
  const details = Array.isArray(data?.errors)
    ? data.errors.map((x) => {
        const err = x as { message?: unknown; code?: unknown; field?: unknown };
        return typeof err.message === 'string' ? err.message : `${String(err.code ?? 'error')}${err.field ? ` (${String(err.field)})` : ''}`;
      })
    : [];
  return [message, ...details].join(': ');
}
