/**
 * Regenerates `subset.json`: the operations the simulator implements, cut out of GitHub's OpenAPI
 * description (`@octokit/openapi`), plus every component they reference (transitively).
 *
 * The full package is ~385 MB unpacked, so it is never a dependency: this script runs
 * `npm pack @octokit/openapi@<PINNED_VERSION>` into a temp dir, extracts only
 * `generated/api.github.com.json`, cuts the subset, and records where it came from in `source.json`.
 *
 * Run: `npx tsx packages/github-sim/openapi/generate.ts`
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMPLEMENTED_OPERATIONS } from './operations.js';

/** The spec version the subset is cut from (matches the openapi-types of the installed @octokit/rest). */
export const PINNED_VERSION = '23.0.1';
const SPEC_FILE = 'package/generated/api.github.com.json';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

function downloadSpec(): { spec: JsonObject; tarball: string; integrity: string } {
  const dir = mkdtempSync(join(tmpdir(), 'openapi-'));
  try {
    const out = execFileSync('npm', ['pack', `@octokit/openapi@${PINNED_VERSION}`, '--json'], {
      cwd: dir,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    const info = (JSON.parse(out) as { filename: string; integrity: string }[])[0]!;
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    execFileSync('tar', ['xzf', tarball, SPEC_FILE], { cwd: dir });
    const spec = JSON.parse(readFileSync(join(dir, SPEC_FILE), 'utf8')) as JsonObject;
    return { spec, tarball: info.filename, integrity: info.integrity };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Drops bulky documentation-only fields that validation never reads. */
function stripExamples(node: Json): Json {
  if (Array.isArray(node)) return node.map(stripExamples);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'examples' || k === 'x-github' || k === 'externalDocs') continue;
    out[k] = stripExamples(v);
  }
  return out;
}

function collectRefs(node: Json, into: Set<string>): void {
  if (Array.isArray(node)) for (const n of node) collectRefs(n, into);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') into.add(v);
      else collectRefs(v, into);
    }
  }
}

/** Cuts the implemented operations and their transitive component references out of `spec`. */
export function cutSubset(spec: JsonObject): JsonObject {
  const paths = spec.paths as Record<string, JsonObject>;
  const subsetPaths: Record<string, JsonObject> = {};
  for (const { method, path } of IMPLEMENTED_OPERATIONS) {
    const item = paths[path];
    const op = item?.[method];
    if (!item || !op) throw new Error(`operation ${method.toUpperCase()} ${path} is not in the spec`);
    const target = (subsetPaths[path] ??= item.parameters ? { parameters: item.parameters } : {});
    target[method] = stripExamples(op);
  }
  const components = spec.components as Record<string, Record<string, Json>>;
  const subsetComponents: Record<string, Record<string, Json>> = {};
  const seen = new Set<string>();
  const queue = new Set<string>();
  collectRefs(subsetPaths as Json, queue);
  while (queue.size > 0) {
    const ref = queue.values().next().value as string;
    queue.delete(ref);
    if (seen.has(ref)) continue;
    seen.add(ref);
    const m = /^#\/components\/([^/]+)\/(.+)$/.exec(ref);
    if (!m) throw new Error(`unsupported $ref ${ref}`);
    const [, kind, name] = m as unknown as [string, string, string];
    const value = components[kind]?.[name];
    if (value === undefined) throw new Error(`dangling $ref ${ref}`);
    const stripped = stripExamples(value);
    (subsetComponents[kind] ??= {})[name] = stripped;
    const more = new Set<string>();
    collectRefs(stripped, more);
    for (const r of more) if (!seen.has(r)) queue.add(r);
  }
  const info = spec.info as JsonObject;
  return {
    openapi: spec.openapi as Json,
    info: { title: info.title as Json, version: info.version as Json, description: 'Subset for test/github-sim' },
    paths: subsetPaths as Json,
    components: subsetComponents as Json,
  };
}

function main(): void {
  const here = dirname(fileURLToPath(import.meta.url));
  const { spec, tarball, integrity } = downloadSpec();
  const subset = cutSubset(spec);
  writeFileSync(join(here, 'subset.json'), JSON.stringify(subset, null, 1) + '\n');
  const info = spec.info as JsonObject;
  const source = {
    package: '@octokit/openapi',
    version: PINNED_VERSION,
    tarball,
    integrity,
    file: 'generated/api.github.com.json',
    specOpenapi: spec.openapi,
    specInfoVersion: info.version,
    specInfoTitle: info.title,
    operations: IMPLEMENTED_OPERATIONS.length,
  };
  writeFileSync(join(here, 'source.json'), JSON.stringify(source, null, 2) + '\n');
  process.stdout.write(JSON.stringify(source) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
