import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startWorld, type World } from '@agora/github-sim/harness';
import { ROUTES } from '@agora/github-sim/server';

/** Fills a route template with plausible or hostile parameter values. */
const paramValue = fc.oneof(fc.constantFrom('1', '1000', 'main', 'heads/main', 'README.md', 'v1', 'agora.yml', 'a'.repeat(40)), fc.string({ maxLength: 12 }));

const body = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc
    .dictionary(
      fc.constantFrom(
        'name',
        'head_sha',
        'ref',
        'sha',
        'tree',
        'message',
        'parents',
        'content',
        'encoding',
        'output',
        'actions',
        'status',
        'conclusion',
        'head',
        'base',
        'title',
        'tag_name',
        'inputs',
        'event_type',
        'client_payload',
        'force',
        'base_tree',
        'permissions',
        'repositories',
      ),
      fc.jsonValue({ maxDepth: 2 }),
    )
    .map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 40 }),
  fc.constant(''),
);

describe('fuzz: random bodies and parameters on every route', () => {
  let w: World;
  let token: string;
  let jwt: string;
  beforeAll(async () => {
    w = await startWorld({ strict: false });
    token = await w.token();
    const auth = await w.appOctokit.auth({ type: 'app' });
    jwt = (auth as { token: string }).token;
  });
  afterAll(async () => {
    await w.close();
  });

  it('always answers 2xx/4xx with a JSON body (or an empty 204/304) and never crashes', async () => {
    for (const [index, route] of ROUTES.entries()) {
      await fc.assert(
        fc.asyncProperty(fc.array(paramValue, { minLength: 4, maxLength: 4 }), body, fc.boolean(), async (values, payload, realRepo) => {
          let i = 0;
          let path = route.template.replace(/\{(\w+)\}/g, (_, name: string) => {
            if (realRepo && name === 'owner') return 'octo';
            if (realRepo && name === 'repo') return 'demo';
            return encodeURIComponent(values[i++ % values.length]!);
          });
          if (route.uploads) path = `/uploads${path}?name=${encodeURIComponent(values[0]!)}`;
          const auth = route.auth === 'app' ? `Bearer ${jwt}` : `token ${token}`;
          const res = await fetch(`${w.sim.apiUrl}${path}`, {
            method: route.method,
            headers: { authorization: auth, 'content-type': 'application/json' },
            body: route.method === 'GET' ? undefined : payload,
          });
          const text = await res.text();
          expect(res.status, `${route.method} ${path} ${payload}`).toBeLessThan(500);
          if (res.status !== 204 && res.status !== 304 && !(res.headers.get('content-type') ?? '').includes('octet-stream')) {
            expect(() => JSON.parse(text), `${route.method} ${path}`).not.toThrow();
          }
        }),
        { numRuns: 10, seed: 20261122 + index },
      );
    }
    await w.sim.settle();
    const statuses = new Set(w.sim.requests.map((r) => r.status));
    for (const expected of [200, 400, 404, 422]) expect(statuses, `status ${expected} seen`).toContain(expected);
    expect([...statuses].some((s) => s === 201 || s === 204)).toBe(true);
    const routesHit = new Set(w.sim.requests.map((r) => r.route).filter(Boolean));
    expect(ROUTES.map((r) => r.template).filter((t) => !routesHit.has(t))).toEqual([]);
    const response = w.sim.contractViolations.filter((v) => v.kind !== 'request');
    expect(response).toEqual([]);
    const health = await fetch(`${w.sim.apiUrl}/repos/octo/demo`, { headers: { authorization: `token ${token}` } });
    expect(health.status).toBe(200);
  });

  it('never accepts a webhook-style or API request with a forged token', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !/[\r\n]/.test(s)),
        async (forged) => {
          const res = await fetch(`${w.sim.apiUrl}/repos/octo/demo`, { headers: { authorization: `token ${encodeURIComponent(forged)}` } });
          expect(res.status).toBe(401);
        },
      ),
      { numRuns: 50 },
    );
  });
});
