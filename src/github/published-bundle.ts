import type { Octokit } from '@octokit/rest';
import { releaseTag } from './run-release.js';

/**
 * A run's published audit bundle: the release `agora-run-<run>-<root12>` of the root anchored in
 * refs/agora/anchors/<run> (the last finish of the run), its `<run>.audit.json` and, when signed,
 * `<run>.audit.sigstore.json`. What is checked is what people download from the release. Read with a
 * plain `@octokit/rest` client and a token (the Action's verify mode, `agora orch gc --bundles-in-releases`).
 * `pending` is set when no release of that tag is published yet: the App anchors the root before it
 * publishes the release, so a reader that came early may wait for it.
 */
export type PublishedBundle =
  { ok: true; tag: string; url: string; bundle: string; sigstore: string | null } | { ok: false; problem: string; pending: boolean };

export async function publishedBundle(octokit: Octokit, repository: string, runId: string, root: string): Promise<PublishedBundle> {
  const [owner, repo] = repository.split('/') as [string, string];
  const tag = releaseTag(runId, root);
  let release;
  try {
    release = (await octokit.rest.repos.getReleaseByTag({ owner, repo, tag })).data;
  } catch (e) {
    if ((e as { status?: number }).status === 404)
      return { ok: false, pending: true, problem: `no published release ${tag} holds the audit of run ${runId} (root ${root.slice(0, 12)} is anchored)` };
    throw e;
  }
  const download = async (name: string): Promise<string | null> => {
    const asset = release.assets.find((a) => a.name === name && a.state === 'uploaded');
    if (!asset) return null;
    const res = await octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
      owner,
      repo,
      asset_id: asset.id,
      headers: { accept: 'application/octet-stream' },
    });
    return Buffer.from(res.data as unknown as ArrayBuffer).toString('utf8');
  };
  const bundle = await download(`${runId}.audit.json`);
  if (bundle === null) return { ok: false, pending: false, problem: `release ${tag} has no uploaded asset ${runId}.audit.json` };
  return { ok: true, tag, url: release.html_url, bundle, sigstore: await download(`${runId}.audit.sigstore.json`) };
}
