/**
 * The Action's REST client waits out GitHub's limits instead of failing the write: a secondary-limit 403
 * with `retry-after` is tried again, and so is a 502. One HTTP exchange each, so nock (no simulator).
 */
import nock from 'nock';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { actionOctokit } from '../../src/action/octokit.js';

const API = 'https://api.agora-action.test';
const env = { GITHUB_API_URL: API };
const SECONDARY = {
  message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
  documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
};

beforeAll(() => nock.disableNetConnect());
afterAll(() => nock.enableNetConnect());
afterEach(() => nock.cleanAll());

describe('the Action REST client', () => {
  it('waits retry-after and writes again after a secondary-limit 403', async () => {
    const api = nock(API)
      .post('/repos/o/r/check-runs')
      .reply(403, SECONDARY, { 'retry-after': '1' })
      .post('/repos/o/r/check-runs')
      .reply(201, { id: 7, name: 'item' });
    const hits: string[] = [];
    const octokit = actionOctokit('t', env, { retryAfterBaseValue: 1, onLimit: (kind, after) => hits.push(`${kind}:${after}`) });
    const created = await octokit.rest.checks.create({ owner: 'o', repo: 'r', name: 'item', head_sha: 'a'.repeat(40) });
    expect(created.data.id).toBe(7);
    expect(hits).toEqual(['secondary:1']);
    expect(api.isDone()).toBe(true);
  });

  it('gives up after its secondary retries with the 403', async () => {
    nock(API).post('/repos/o/r/check-runs').times(3).reply(403, SECONDARY, { 'retry-after': '1' });
    const octokit = actionOctokit('t', env, { retryAfterBaseValue: 1, secondaryRetries: 2, onLimit: () => {} });
    await expect(octokit.rest.checks.create({ owner: 'o', repo: 'r', name: 'item', head_sha: 'a'.repeat(40) })).rejects.toMatchObject({ status: 403 });
  });

  it('tries a 502 again', async () => {
    const api = nock(API).get('/repos/o/r').reply(502, { message: 'Bad Gateway' }).get('/repos/o/r').reply(200, { full_name: 'o/r' });
    const octokit = actionOctokit('t', env, { retryAfterBaseValue: 1 });
    const repo = await octokit.rest.repos.get({ owner: 'o', repo: 'r' });
    expect(repo.data.full_name).toBe('o/r');
    expect(api.isDone()).toBe(true);
  });
});
