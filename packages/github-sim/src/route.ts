/** The shape of one simulated REST operation and the request it receives. */
import type { IncomingHttpHeaders } from 'node:http';
import type { InstallationToken, Permissions } from './auth.js';
import type { App, Installation, Repo } from './state.js';
import type { Sim } from './sim.js';

/** Who is calling: the app itself (JWT) or one of its installations (token). */
export type Caller = { kind: 'app'; app: App } | { kind: 'installation'; app: App; token: InstallationToken; installation: Installation };

export interface RouteRequest {
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Parsed JSON body (`{}` when empty); for raw routes, undefined. */
  body: unknown;
  raw: Buffer;
  headers: IncomingHttpHeaders;
  caller: Caller;
  /** The repository of /repos/{owner}/{repo}/… routes, already access-checked. */
  repo: Repo;
}

export interface RouteResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** A non-JSON body (asset download). */
  raw?: Buffer;
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** The OpenAPI path template; also the key for contract checks. */
  template: string;
  /** `app`: needs an app JWT; `installation`: needs an installation token. */
  auth: 'app' | 'installation';
  /** Installation permissions needed (installation routes). */
  permission?: Permissions;
  /** Counts toward the content-creation secondary limit. */
  creates?: boolean;
  /** Served on the uploads host with a raw body. */
  uploads?: boolean;
  handle(req: RouteRequest, sim: Sim): Promise<RouteResult>;
}

/** Path parameters that may contain slashes. */
const GREEDY = new Set(['ref', 'path']);

/** Compiles a template into a matcher. */
export function compileTemplate(template: string): (path: string) => Record<string, string> | null {
  const names: string[] = [];
  const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    // A repository path may be empty (the root directory): `/contents` and `/contents/` both match.
    if (name === 'path') return '(?:/(.*?))?';
    return GREEDY.has(name) ? '/(.+?)' : '/([^/]+)';
  });
  const re = new RegExp(`^${pattern}$`);
  return (path) => {
    const m = re.exec(path);
    if (!m) return null;
    const params: Record<string, string> = {};
    names.forEach((n, i) => {
      let v = m[i + 1] ?? '';
      try {
        v = decodeURIComponent(v);
      } catch {
        /* keep raw */
      }
      params[n] = v;
    });
    return params;
  };
}
