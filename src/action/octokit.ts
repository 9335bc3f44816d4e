import { Octokit } from '@octokit/rest';

/**
 * The Action's REST client: `@octokit/rest` with the job's token against the job's API (GITHUB_API_URL,
 * so GitHub Enterprise Server and the simulator work).
 */
export function actionOctokit(token: string, env: NodeJS.ProcessEnv = process.env): Octokit {
  return new Octokit({ auth: token, ...(env.GITHUB_API_URL ? { baseUrl: env.GITHUB_API_URL } : {}), userAgent: 'agora-action' });
}
