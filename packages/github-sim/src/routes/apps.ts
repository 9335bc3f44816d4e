/** /app…, access tokens, webhook deliveries, /installation/repositories, /repos/{o}/{r}/installation. */
import { permits, type Permissions } from '../auth.js';
import { HttpError, notFound } from '../http.js';
import { installationJson, minimalRepoJson } from '../shapes.js';
import type { Route } from '../route.js';
import type { WebhookDelivery } from '../webhooks.js';
import type { Sim } from '../sim.js';

const TOKEN_LIFETIME_MS = 3_600_000;

/**
 * The REST installation shape. The spec's list operation types `account` as simple-user AND
 * enterprise (allOf), so the account also carries the enterprise fields (name, slug, timestamps).
 */
function installationRest(...args: Parameters<typeof installationJson>): Record<string, unknown> {
  const json = installationJson(...args);
  const account = json.account as Record<string, unknown>;
  const inst = args[0];
  json.account = { ...account, name: account.login, slug: account.login, created_at: inst.createdAt, updated_at: inst.createdAt };
  return json;
}

function deliveryItem(d: WebhookDelivery): Record<string, unknown> {
  return {
    id: d.id,
    guid: d.guid,
    delivered_at: d.deliveredAt,
    redelivery: d.redelivery,
    duration: d.durationSeconds,
    status: d.status,
    status_code: d.statusCode,
    event: d.event,
    action: d.action,
    installation_id: d.installationId,
    repository_id: d.repositoryId,
    throttled_at: null,
  };
}

function findDelivery(sim: Sim, appId: number, id: string): WebhookDelivery {
  const d = sim.deliveries.find((x) => x.appId === appId && String(x.id) === id);
  if (!d) throw notFound();
  return d;
}

/**
 * `page`/`per_page` pagination as GitHub does it for list endpoints: 30 per page by default, at most
 * 100, pages from 1, and a Link header with `next`/`last` (and `prev`/`first` past the first page).
 */
export function paginate<T>(items: T[], query: URLSearchParams, base: string): { page: T[]; headers: Record<string, string> } {
  const perPage = Math.min(100, Math.max(1, Number(query.get('per_page') ?? 30) || 30));
  const page = Math.max(1, Math.floor(Number(query.get('page') ?? 1)) || 1);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (n: number, rel: string): string => `<${base}?per_page=${perPage}&page=${n}>; rel="${rel}"`;
  const links: string[] = [];
  if (page > 1) links.push(link(Math.min(page - 1, last), 'prev'));
  if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
  if (page > 1) links.push(link(1, 'first'));
  return { page: items.slice((page - 1) * perPage, page * perPage), headers: links.length > 0 ? { link: links.join(', ') } : {} };
}

export const appRoutes: Route[] = [
  {
    method: 'GET',
    template: '/app',
    auth: 'app',
    handle: async (req, sim) => ({ status: 200, body: sim.appRest(req.caller.app) }),
  },
  {
    method: 'GET',
    template: '/app/installations',
    auth: 'app',
    handle: async (req, sim) => {
      const app = req.caller.app;
      const list = [...sim.state.installations.values()].filter((i) => i.appId === app.id);
      return { status: 200, body: list.map((i) => installationRest(i, app, sim.urls)) };
    },
  },
  {
    method: 'GET',
    template: '/app/installations/{installation_id}',
    auth: 'app',
    handle: async (req, sim) => {
      const inst = sim.state.installations.get(Number(req.params.installation_id));
      if (!inst || inst.appId !== req.caller.app.id) throw notFound();
      return { status: 200, body: installationRest(inst, req.caller.app, sim.urls) };
    },
  },
  {
    method: 'POST',
    template: '/app/installations/{installation_id}/access_tokens',
    auth: 'app',
    handle: async (req, sim) => {
      const app = req.caller.app;
      const inst = sim.state.installations.get(Number(req.params.installation_id));
      if (!inst || inst.appId !== app.id) throw notFound();
      const body = req.body as { repositories?: string[]; repository_ids?: number[]; permissions?: Permissions };
      let permissions: Permissions = { ...app.permissions };
      if (body.permissions) {
        if (!permits(app.permissions, body.permissions)) {
          throw new HttpError(422, 'The permissions requested are not granted to this installation.');
        }
        permissions = { metadata: 'read', ...body.permissions };
      }
      let repositories: string[] | null = null;
      if (body.repositories || body.repository_ids) {
        repositories = [];
        const all = [...inst.repositories].map((n) => sim.repo(n));
        for (const name of body.repositories ?? []) {
          const r = all.find((x) => x.name.toLowerCase() === name.toLowerCase());
          if (!r) throw new HttpError(422, `There is at least one repository that does not exist or is not accessible to the parent installation.`);
          repositories.push(r.fullName);
        }
        for (const id of body.repository_ids ?? []) {
          const r = all.find((x) => x.id === id);
          if (!r) throw new HttpError(422, `There is at least one repository that does not exist or is not accessible to the parent installation.`);
          repositories.push(r.fullName);
        }
      }
      const expiresAt = Date.now() + TOKEN_LIFETIME_MS;
      const token = sim.tokens.issue({ installationId: inst.id, appId: app.id, expiresAt, permissions, repositories });
      const json: Record<string, unknown> = {
        token: token.token,
        expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        permissions,
        repository_selection: 'selected',
      };
      if (repositories) json.repositories = repositories.map((n) => minimalRepoJson(sim.repo(n), sim.urls));
      return { status: 201, body: json };
    },
  },
  {
    method: 'GET',
    template: '/app/hook/deliveries',
    auth: 'app',
    handle: async (req, sim) => {
      const perPage = Math.min(100, Math.max(1, Number(req.query.get('per_page') ?? 30) || 30));
      const cursor = req.query.get('cursor');
      let list = sim.deliveries
        .filter((d) => d.appId === req.caller.app.id)
        .slice()
        .reverse();
      if (cursor) list = list.filter((d) => d.id < Number(cursor));
      const page = list.slice(0, perPage);
      const headers: Record<string, string> = {};
      if (list.length > perPage) {
        const next = `${sim.urls.api}/app/hook/deliveries?per_page=${perPage}&cursor=${page[page.length - 1]!.id}`;
        headers.link = `<${next}>; rel="next"`;
      }
      return { status: 200, body: page.map(deliveryItem), headers };
    },
  },
  {
    method: 'GET',
    template: '/app/hook/deliveries/{delivery_id}',
    auth: 'app',
    handle: async (req, sim) => {
      const d = findDelivery(sim, req.caller.app.id, req.params.delivery_id!);
      return {
        status: 200,
        body: {
          ...deliveryItem(d),
          url: req.caller.app.webhookUrl,
          request: { headers: d.requestHeaders, payload: JSON.parse(d.body) as unknown },
          response: { headers: d.responseHeaders, payload: d.responseBody },
        },
      };
    },
  },
  {
    method: 'POST',
    template: '/app/hook/deliveries/{delivery_id}/attempts',
    auth: 'app',
    handle: async (req, sim) => {
      const app = req.caller.app;
      const d = findDelivery(sim, app.id, req.params.delivery_id!);
      sim.webhooks.redeliver({ appId: app.id, url: app.webhookUrl, secret: app.webhookSecret }, d);
      return { status: 202, body: {} };
    },
  },
  {
    method: 'GET',
    template: '/installation/repositories',
    auth: 'installation',
    handle: async (req, sim) => {
      if (req.caller.kind !== 'installation') throw notFound();
      const { installation, token } = req.caller;
      // A token scoped to some repositories lists only those; an unscoped one every repository of the installation.
      const names = [...installation.repositories].filter((n) => token.repositories === null || token.repositories.includes(n));
      const { page, headers } = paginate(names, req.query, `${sim.urls.api}/installation/repositories`);
      const repositories = page.map((n) => ({
        ...minimalRepoJson(sim.repo(n), sim.urls),
        permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
      }));
      return { status: 200, body: { total_count: names.length, repositories, repository_selection: 'selected' }, headers };
    },
  },
  {
    method: 'GET',
    template: '/repos/{owner}/{repo}/installation',
    auth: 'app',
    handle: async (req, sim) => {
      const inst = sim.state.installationFor(req.caller.app.id, req.repo.fullName);
      if (!inst) throw notFound();
      return { status: 200, body: installationRest(inst, req.caller.app, sim.urls) };
    },
  },
];
