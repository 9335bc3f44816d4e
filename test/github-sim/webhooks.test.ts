import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { eventually } from '../support/eventually.js';
import { startWorld, type World } from '@agora/github-sim/harness';
import { parseWebhook, signWebhook, startGitHubSim, WebhookSchemaValidator } from '@agora/github-sim';

const require = createRequire(import.meta.url);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('webhooks', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld();
  });
  afterAll(async () => {
    expect(w.sim.contractViolations).toEqual([]);
    await w.close();
  });

  it('signs every delivery with HMAC-SHA256 (and the legacy HMAC-SHA1) of the exact body, with a uuid delivery id', async () => {
    await w.sim.push('octo/demo', { branch: 'main', files: { 'w.txt': 'w' }, message: 'w' });
    await w.sim.settle();
    expect(w.receiver.rejected).toEqual([]);
    expect(w.receiver.received.map((r) => r.name)).toEqual(['installation', 'push', 'check_suite']);
    for (const d of w.sim.webhookDeliveries) {
      expect(d.requestHeaders['x-github-delivery']).toMatch(UUID);
      expect(d.requestHeaders['x-hub-signature-256']).toBe(signWebhook('test-secret', d.body));
      expect(d.requestHeaders['x-hub-signature']).toBe(`sha1=${createHmac('sha1', 'test-secret').update(d.body).digest('hex')}`);
      expect(d.status).toBe('OK');
    }
    const push = w.receiver.received[1]!.payload;
    expect(push).toMatchObject({ installation: { id: w.installationId }, repository: { full_name: 'octo/demo' }, sender: { login: 'octo' } });
  });

  it('the parser refuses tampered bodies, wrong secrets, missing signatures and non-objects', () => {
    const body = JSON.stringify({ action: 'created' });
    const headers = { 'x-github-event': 'check_run', 'x-github-delivery': 'd', 'x-hub-signature-256': signWebhook('s', body) };
    expect(parseWebhook({ headers, body, secret: 's' }).payload).toEqual({ action: 'created' });
    expect(() => parseWebhook({ headers, body: body + ' ', secret: 's' })).toThrow(/signature/);
    expect(() => parseWebhook({ headers, body, secret: 'other' })).toThrow(/signature/);
    expect(() => parseWebhook({ headers: { ...headers, 'x-hub-signature-256': undefined }, body, secret: 's' })).toThrow(/missing/);
    expect(() => parseWebhook({ headers: { ...headers, 'x-hub-signature-256': 'sha256=00' }, body, secret: 's' })).toThrow(/signature/);
    const arr = '[1]';
    expect(() => parseWebhook({ headers: { ...headers, 'x-hub-signature-256': signWebhook('s', arr) }, body: arr, secret: 's' })).toThrow(/object/);
  });

  it('does not redeliver failures by itself; the app lists deliveries and redelivers', async () => {
    w.receiver.respondWith.push(500);
    const before = w.sim.webhookDeliveries.length;
    await w.sim.push('octo/demo', { branch: 'fail', files: { 'f.txt': 'f' }, message: 'f' });
    const failed = await eventually('the failed delivery to be recorded', async () => {
      await w.sim.settle();
      const seen = w.sim.webhookDeliveries.slice(before).filter((d) => d.status !== 'OK');
      return seen.length > 0 ? seen : undefined;
    });
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ statusCode: 500, status: 'Invalid HTTP Response: 500', event: 'push', redelivery: false });
    const listed = await w.appOctokit.apps.listWebhookDeliveries({ per_page: 100 });
    const item = listed.data.find((d) => d.id === failed[0]!.id)!;
    expect(item).toMatchObject({ status_code: 500, event: 'push', installation_id: w.installationId, redelivery: false });
    const one = await w.appOctokit.apps.getWebhookDelivery({ delivery_id: item.id });
    expect(one.data.request.payload).toMatchObject({ ref: 'refs/heads/fail' });
    const count = w.receiver.received.length;
    const attempt = await w.appOctokit.apps.redeliverWebhookDelivery({ delivery_id: item.id });
    expect(attempt.status).toBe(202);
    await w.sim.settle();
    const redelivered = w.receiver.received.slice(count);
    expect(redelivered.map((r) => r.id)).toEqual([item.guid]);
    expect(w.sim.webhookDeliveries.at(-1)).toMatchObject({ redelivery: true, guid: item.guid, status: 'OK' });
    const page = await w.appOctokit.apps.listWebhookDeliveries({ per_page: 2 });
    expect(page.data).toHaveLength(2);
    expect(page.headers.link).toMatch(/rel="next"/);
  });

  it('times out slow receivers and records it (no retry); a slow app does not delay another app', async () => {
    const hang = createServer(() => undefined);
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
    const sim = await startGitHubSim({ webhookTimeoutMs: 400 });
    try {
      const slow = sim.createApp({ webhookUrl: `http://127.0.0.1:${(hang.address() as AddressInfo).port}/`, secret: 's' });
      const fast = sim.createApp({ webhookUrl: w.receiver.url, secret: 'test-secret' });
      await sim.createRepo('o', 'r', { a: 'a' });
      sim.installApp(slow.appId, 'o/r');
      sim.installApp(fast.appId, 'o/r');
      await sim.settle();
      expect(sim.webhookDeliveries.map((d) => [d.appId, d.status])).toEqual([
        [fast.appId, 'OK'],
        [slow.appId, 'timed out'],
      ]);
      expect(sim.webhookDeliveries[1]).toMatchObject({ statusCode: 0 });
      expect(sim.webhookDeliveries[1]!.durationSeconds).toBeGreaterThanOrEqual(0.35);
    } finally {
      await sim.close();
      hang.closeAllConnections();
      hang.close();
    }
  });

  it('drops deliveries by a seeded rate, reproducibly', async () => {
    const pattern = async (): Promise<boolean[]> => {
      const sim = await startGitHubSim({ faults: { dropWebhookRate: 0.5 }, seed: 7 });
      try {
        const app = sim.createApp({ webhookUrl: w.receiver.url, secret: 'test-secret' });
        await sim.createRepo('o', 'r', { a: 'a' });
        sim.installApp(app.appId, 'o/r');
        for (let i = 0; i < 12; i++) await sim.push('o/r', { branch: 'main', files: { a: String(i) }, message: String(i) });
        await sim.settle();
        return sim.webhookDeliveries.map((d) => d.dropped);
      } finally {
        await sim.close();
      }
    };
    const a = await pattern();
    const b = await pattern();
    expect(a).toEqual(b);
    expect(a.filter(Boolean).length).toBeGreaterThan(0);
    expect(a.filter((x) => !x).length).toBeGreaterThan(0);
  });

  it('replays @octokit/webhooks-examples for the events the app needs through the parser and the schemas', () => {
    const examples = require('@octokit/webhooks-examples/api.github.com/index.json') as { name: string; examples: Record<string, unknown>[] }[];
    const wanted = ['push', 'pull_request', 'check_run', 'check_suite', 'installation', 'workflow_job', 'workflow_run', 'repository_dispatch'];
    const validator = new WebhookSchemaValidator();
    let replayed = 0;
    const schemaDrift: string[] = [];
    for (const group of examples.filter((g) => wanted.includes(g.name))) {
      for (const [index, example] of group.examples.entries()) {
        const body = JSON.stringify(example);
        const parsed = parseWebhook({
          headers: { 'x-github-event': group.name, 'x-github-delivery': 'ex', 'x-hub-signature-256': signWebhook('k', body) },
          body,
          secret: 'k',
        });
        expect(parsed.name).toBe(group.name);
        expect(parsed.payload).toEqual(example);
        expect(validator.definitionFor(group.name, example.action as string | undefined)).not.toBeNull();
        if (validator.validate(group.name, parsed.payload).length > 0) schemaDrift.push(`${group.name}#${index}`);
        replayed++;
      }
    }
    expect(replayed).toBeGreaterThan(70);
    // Older recorded examples predate fields the schemas now require (is_template, auto_merge, …).
    // They are listed exactly, so a change in either package shows up here.
    expect(schemaDrift).toEqual([
      'check_run#0',
      'check_run#7',
      'check_run#8',
      'check_suite#0',
      'installation#0',
      'pull_request#0',
      'push#0',
      'repository_dispatch#0',
      'workflow_job#0',
      'workflow_run#0',
    ]);
  });
});
