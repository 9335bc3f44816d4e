import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditBundle } from '../../src/audit/bundle.js';
import { checkBundleSchema, parseAuditBundle } from '../../src/audit/verify/parse.js';
import { pinMismatches } from '../../src/audit/verify/pins.js';
import { ROOT } from '../support/repo.js';
import { clone } from './bundle-fixture.js';

/**
 * docs/audit.md §1, §2, §6 and §8.1: what the JSON Schema holds a bundle to. The types the text gives
 * (ids, lower-case hex digests and commit ids, integer times and counters, the run's and items' states)
 * are the schema's; the signature record is closed like every other object but an entry, which is open
 * (a verifier hashes whatever members an entry has). The bundle written by the last code of format v1 and
 * the worked example of §12 satisfy it.
 */

const V1 = JSON.parse(readFileSync(join(ROOT, 'test/audit/fixtures/v1/fanout-1-1.audit.json'), 'utf8')) as AuditBundle;

/** The worked example's bundle (§12), as the spec prints it. */
function specExample(): AuditBundle {
  const md = readFileSync(join(ROOT, 'docs/audit.md'), 'utf8');
  const m = /<!-- spec-example:bundle -->\n```json\n([\s\S]*?)\n```/.exec(md);
  return JSON.parse(m![1]!) as AuditBundle;
}

/** A copy of the v1 fixture with the member at `path` set to `value` (or to `value(old)`). */
function edited(path: Array<string | number>, value: unknown): unknown {
  const b = clone(V1) as unknown as Record<string | number, unknown>;
  let at = b;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  at[last] = typeof value === 'function' ? (value as (old: unknown) => unknown)(at[last]) : value;
  return b;
}

const problem = (b: unknown) => {
  const r = checkBundleSchema(b);
  return r.ok ? 'ok' : r.problem;
};

describe('the bundle schema holds the types of §1, §2 and §6', () => {
  it('the v1 fixture and the worked example satisfy it', () => {
    expect(problem(V1)).toBe('ok');
    expect(problem(specExample())).toBe('ok');
  });

  it('refuses what the text rules out', () => {
    // [what, JSON path to the member, its new value (or how the old one changes), the violation named]
    const up = (v: unknown) => String(v).toUpperCase();
    const cut = (v: unknown) => String(v).slice(1);
    const cases: Array<[string, Array<string | number>, unknown, RegExp]> = [
      ['a run id that is no id', ['runId'], 'a/b', /^\$\.runId: /],
      ['a run id ending in .lock', ['runId'], 'run.lock', /^\$\.runId: /],
      ['a planDigest in upper case', ['planDigest'], up, /^\$\.planDigest: must match pattern/],
      ['a base of 64 hex digits', ['base'], 'a'.repeat(64), /^\$\.base: must match pattern/],
      ['an integration head in upper case', ['integrationHead'], up, /^\$\.integrationHead: /],
      ['a run state §4 does not have', ['state'], 'banana', /^\$\.state: must be equal to one of the allowed values/],
      ['a root that is not 64 hex digits', ['root'], cut, /^\$\.root: /],
      ['an item id with a slash', ['items', 0, 'id'], 'a/b', /^\$\.items\[0\]\.id: /],
      ['an item status §4 does not have', ['items', 0, 'status'], 'banana', /^\$\.items\[0\]\.status: /],
      ['an item base that is not a commit id', ['items', 0, 'base'], 'main', /^\$\.items\[0\]\.base: /],
      ['an item time that is not an integer', ['items', 0, 'startedAt'], 1.5, /^\$\.items\[0\]\.startedAt: must be integer/],
      ['an entry time that is not an integer', ['entries', 0, 'at'], 1.5, /^\$\.entries\[0\]\.at: must be integer/],
      ['an attempt that is not an integer', ['entries', 1, 'attempt'], 0.5, /^\$\.entries\[1\]\.attempt: must be integer/],
      ['a seq that is not an integer', ['entries', 1, 'seq'], 1.5, /^\$\.entries\[1\]\.seq: must be integer/],
      ['a prevHash in upper case', ['entries', 1, 'prevHash'], up, /^\$\.entries\[1\]\.prevHash: must match pattern/],
      ['a hash that is not 64 hex digits', ['entries', 1, 'hash'], 'ab', /^\$\.entries\[1\]\.hash: must match pattern/],
      ['an entry runId that is no id', ['entries', 1, 'runId'], '..', /^\$\.entries\[1\]\.runId: /],
      ['an anchor commit of 39 digits', ['anchor', 'commit'], cut, /^\$\.anchor/],
      ['a params digest that is not 64 hex digits', ['params'], { values: { a: 1 }, digest: 'x' }, /^\$\.params\.digest: must match pattern/],
      ['a signature record with a member §6 does not list', ['signature', 'extra'], 1, /^\$\.signature/],
    ];
    for (const [name, path, value, message] of cases) expect(problem(edited(path, value)), name).toMatch(message);
  });

  it('an entry is open: a member §2 does not list is no schema error (it is hashed, §2)', () => {
    expect(problem(edited(['entries', 0, 'note'], 'x'))).toBe('ok');
  });

  it("a run id may be the CLI's <plan id>-<n>, longer than an id", () => {
    const b = clone(V1);
    b.runId = `${'p'.repeat(100)}-12`;
    expect(problem(b)).toBe('ok');
    b.runId = `${'p'.repeat(100)}-012`;
    expect(problem(b)).toMatch(/^\$\.runId: /);
  });
});

describe('the format string (§6, §8.1)', () => {
  const text = (format: string) => JSON.stringify({ ...V1, format });
  const code = (format: string) => {
    try {
      parseAuditBundle(text(format), 'b.json');
      return 'parsed';
    } catch (error) {
      return (error as { code?: string }).code;
    }
  };

  it('is one of agora.audit/v1 … v5 exactly; v<n> past 5, n without leading zeros, is a newer version; anything else is no bundle', () => {
    expect(code('agora.audit/v1')).toBe('parsed');
    expect(code('agora.audit/v6')).toBe('bundle-version');
    expect(code('agora.audit/v12')).toBe('bundle-version');
    for (const f of ['agora.audit/v02', 'agora.audit/v06', 'agora.audit/v0', 'agora.audit/V1', 'agora.audit/v1 ', 'agora.audit/v+6'])
      expect(code(f), f).toBe('bundle-invalid');
  });
});

describe('--plan-commit is compared as text (§1, §8.2)', () => {
  it('an upper-case pin is another commit id, not the same one', () => {
    expect(pinMismatches(V1, { planCommit: V1.base })).toEqual([]);
    expect(pinMismatches(V1, { planCommit: V1.base.toUpperCase() })).toEqual([
      `the run started on commit ${V1.base}, but the verifier expects plan commit ${V1.base.toUpperCase()} (--plan-commit)`,
    ]);
  });
});
