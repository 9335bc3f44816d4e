/**
 * Contract checks: request and response bodies against the committed OpenAPI subset, webhook
 * payloads against @octokit/webhooks-schemas. OpenAPI 3.0's `nullable` is rewritten into JSON
 * Schema type unions; unknown formats are allowed, `date-time`, `uri` and `email` are checked.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction, type ErrorObject } from 'ajv';

const require = createRequire(import.meta.url);

/** One broken contract: which side, which operation or event, and ajv's complaints. */
export interface ContractViolation {
  kind: 'request' | 'response' | 'webhook';
  /** `GET /repos/{owner}/{repo}` or the webhook `event.action`. */
  operation: string;
  status?: number;
  errors: string[];
}

type Node = unknown;

/** Rewrites OpenAPI 3.0 `nullable: true` into JSON Schema type unions, recursively. */
export function normaliseNullable(node: Node): Node {
  if (Array.isArray(node)) return node.map(normaliseNullable);
  if (node === null || typeof node !== 'object') return node;
  const src = node as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(src)) {
    if (k === 'nullable' || k === 'discriminator' || k === 'example' || k === 'deprecated') continue;
    out[k] = k === 'enum' || k === 'required' ? v : normaliseNullable(v);
  }
  if (src.nullable !== true) return out;
  if (typeof out.type === 'string') {
    out.type = [out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return out;
  }
  return { anyOf: [out, { type: 'null' }] };
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/i;

function newAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, logger: false, validateSchema: false });
  ajv.addFormat('date-time', DATE_TIME);
  ajv.addFormat('uri', {
    validate: (s: string) => {
      try {
        new URL(s);
        return true;
      } catch {
        return false;
      }
    },
  });
  ajv.addFormat('email', /^[^\s@]+@[^\s@]+$/);
  return ajv;
}

const pointer = (segments: string[]): string => '#/' + segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).slice(0, 20).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

interface Spec {
  paths: Record<string, Record<string, { requestBody?: unknown; responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }>>;
}

/** Validates bodies of the implemented operations against the OpenAPI subset. */
export class OpenApiValidator {
  private readonly ajv = newAjv();
  private readonly spec: Spec;
  private readonly cache = new Map<string, ValidateFunction | null>();

  constructor(subsetPath = fileURLToPath(new URL('../openapi/subset.json', import.meta.url))) {
    const raw = JSON.parse(readFileSync(subsetPath, 'utf8')) as Record<string, unknown>;
    this.spec = normaliseNullable(raw) as Spec;
    this.ajv.addSchema({ ...(this.spec as object), $id: 'subset' } as object);
  }

  /** Whether the subset describes this operation at all. */
  has(method: string, template: string): boolean {
    return Boolean(this.spec.paths[template]?.[method.toLowerCase()]);
  }

  private compiled(key: string, segments: string[], exists: boolean): ValidateFunction | null {
    if (!this.cache.has(key)) {
      this.cache.set(key, exists ? this.ajv.compile({ $ref: 'subset' + pointer(segments) }) : null);
    }
    return this.cache.get(key)!;
  }

  /** Errors of a JSON request body (empty when valid or when the operation takes no JSON body). */
  request(method: string, template: string, body: unknown): string[] {
    const m = method.toLowerCase();
    const op = this.spec.paths[template]?.[m] as { requestBody?: { content?: Record<string, unknown> } } | undefined;
    const has = Boolean(op?.requestBody?.content?.['application/json']);
    const v = this.compiled(`req ${m} ${template}`, ['paths', template, m, 'requestBody', 'content', 'application/json', 'schema'], has);
    if (!v) return [];
    return v(body) ? [] : describe(v.errors);
  }

  /** Errors of a JSON response body for `status` (unknown statuses are themselves a violation). */
  response(method: string, template: string, status: number, body: unknown): string[] {
    const m = method.toLowerCase();
    const op = this.spec.paths[template]?.[m];
    if (!op) return [];
    const responses = op.responses ?? {};
    const code = responses[String(status)] ? String(status) : responses.default ? 'default' : null;
    if (code === null) return [`status ${status} is not documented for ${method.toUpperCase()} ${template}`];
    const content = responses[code]?.content ?? {};
    const type = ['application/json', 'application/vnd.github.object'].find((t) => content[t]?.schema);
    if (!type) return [];
    const v = this.compiled(`res ${m} ${template} ${code}`, ['paths', template, m, 'responses', code, 'content', type, 'schema'], true)!;
    return v(body) ? [] : describe(v.errors);
  }
}

/** Validates webhook payloads against @octokit/webhooks-schemas. */
export class WebhookSchemaValidator {
  private readonly ajv = newAjv();
  private readonly definitions: Set<string>;
  private readonly cache = new Map<string, ValidateFunction>();

  constructor() {
    const schema = JSON.parse(readFileSync(require.resolve('@octokit/webhooks-schemas/schema.json'), 'utf8')) as Record<string, unknown>;
    delete schema.$schema;
    this.definitions = new Set(Object.keys(schema.definitions as object));
    this.ajv.addSchema({ ...schema, $id: 'webhooks' });
  }

  /** The schema definition name for an event/action, or null when the schemas do not know it. */
  definitionFor(event: string, action: string | undefined): string | null {
    const candidates = [action ? `${event}$${action}` : '', `${event}$event`, `${event}_event`];
    return candidates.find((c) => c && this.definitions.has(c)) ?? null;
  }

  /** Errors of a payload (a payload for an unknown event/action is itself an error). */
  validate(event: string, payload: unknown): string[] {
    const action = (payload as { action?: unknown } | null)?.action;
    const def = this.definitionFor(event, typeof action === 'string' ? action : undefined);
    if (!def) return [`no schema for event ${event}${typeof action === 'string' ? '.' + action : ''}`];
    let v = this.cache.get(def);
    if (!v) {
      v = this.ajv.compile({ $ref: `webhooks#/definitions/${encodeURIComponent(def)}` });
      this.cache.set(def, v);
    }
    return v(payload) ? [] : describe(v.errors);
  }
}

let openApiSingleton: OpenApiValidator | undefined;
let webhookSingleton: WebhookSchemaValidator | undefined;

/** One OpenAPI validator per process (compiling the schemas is the expensive part). */
export function sharedOpenApiValidator(): OpenApiValidator {
  return (openApiSingleton ??= new OpenApiValidator());
}

/** One webhook-schema validator per process. */
export function sharedWebhookValidator(): WebhookSchemaValidator {
  return (webhookSingleton ??= new WebhookSchemaValidator());
}
