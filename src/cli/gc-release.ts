import { Octokit } from '@octokit/rest';
import type { AuditBundle } from '../audit/bundle.js';
import { AgoraError } from '../errors.js';
import { publishedBundle } from '../github/published-bundle.js';
import type { KeepOutcome } from '../runs/gc.js';

/**
 * `gc --bundles-in-releases`: a run of a GitHub repository counts as kept elsewhere when the release the
 * App published for it (tag `agora-run-<run>-<root12>`) holds `<run>.audit.json` and that file's Merkle
 * root is the one gc just computed from the run's refs. Anything less (no such release, a draft, an
 * asset not fully uploaded, another root) keeps the run, saying which.
 */

export interface ReleaseBundles {
  has(runId: string, bundle: Pick<AuditBundle, 'root'>): Promise<KeepOutcome>;
}

/** `owner/repo` of a GitHub https clone URL (`https://github.com/o/r.git`). */
export function repositoryOf(url: string): { owner: string; repo: string } {
  const parts = new URL(url).pathname.split('/').filter(Boolean);
  const [owner, name] = parts.slice(-2);
  if (!owner || !name) {
    throw new AgoraError(
      'gc-remote',
      `${url} does not name a repository as owner/name`,
      "pass the repository's clone URL, e.g. https://github.com/OWNER/REPO.git",
    );
  }
  return { owner, repo: name.replace(/\.git$/, '') };
}

/** The REST API beside a clone URL: `GITHUB_API_URL` when set (as on Actions runners), else github.com's or GHES's. */
export function apiUrlFor(url: string, env: NodeJS.ProcessEnv): string {
  if (env.GITHUB_API_URL) return env.GITHUB_API_URL;
  const { origin, hostname } = new URL(url);
  return hostname === 'github.com' ? 'https://api.github.com' : `${origin}/api/v3`;
}

export function releaseBundles(url: string, token: string, env: NodeJS.ProcessEnv): ReleaseBundles {
  const { owner, repo } = repositoryOf(url);
  const octokit = new Octokit({ auth: token, baseUrl: apiUrlFor(url, env), userAgent: 'agora-gc' });
  return {
    async has(runId, bundle) {
      const published = await publishedBundle(octokit, `${owner}/${repo}`, runId, bundle.root);
      if (!published.ok) return { kept: false, why: `${published.problem}; it stays (publish it, or use --bundle-dir)` };
      const name = `${runId}.audit.json`;
      let root: unknown;
      try {
        root = (JSON.parse(published.bundle) as { root?: unknown }).root;
      } catch {
        return { kept: false, why: `${name} of release ${published.tag} is not JSON; it stays` };
      }
      if (root !== bundle.root)
        return { kept: false, why: `${name} of release ${published.tag} has root ${String(root)}, not the run's ${bundle.root}; it stays` };
      return { kept: true, where: `${published.url} (${name})` };
    },
  };
}
