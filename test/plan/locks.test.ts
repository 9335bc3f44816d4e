import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { lockKeyProblem, locksOverlap, normalizeLockKey, outOfScope, pathInScope } from '../../src/plan/locks.js';

describe('lockKeyProblem', () => {
  it.each(['src/a.ts', 'src/', 'src', 'fixture/alpha.ts', '.github/workflows/', 'a/.gitignore', 'docs/..x'])('accepts %j', (key) => {
    expect(lockKeyProblem(key)).toBeUndefined();
  });

  it.each([
    ['', /empty/],
    ['/src', /absolute/],
    ['C:/src', /absolute/],
    ['src\\a.ts', /backslash/],
    ['src/a\u0000', /control character/],
    ['src/\n', /control character/],
    ['./src', /"\." component/],
    ['src/../etc', /"\.\." component/],
    ['src//a', /empty component/],
    ['.git/config', /\.git/],
    ['sub/.GIT', /\.git/],
    ['/', /absolute/],
  ])('rejects %j and says how to write a key', (key, why) => {
    const problem = lockKeyProblem(key);
    expect(problem).toMatch(why);
    expect(problem).toContain('like "src/a.ts" (one file) or "src/" (a subtree)');
  });
});

describe('locksOverlap', () => {
  it('treats a key and its subtree as overlapping, at "/" boundaries only', () => {
    expect(normalizeLockKey('src/')).toBe('src');
    expect(locksOverlap('src', 'src/a.ts')).toBe(true);
    expect(locksOverlap('src/', 'src/a.ts')).toBe(true);
    expect(locksOverlap('src/', 'src')).toBe(true);
    expect(locksOverlap('src/a.ts', 'src/a.ts')).toBe(true);
    expect(locksOverlap('src/a', 'src/ab')).toBe(false);
    expect(locksOverlap('src/a.ts', 'src/b.ts')).toBe(false);
    expect(locksOverlap('lib/', 'src/')).toBe(false);
  });
});

describe('resource keys', () => {
  it.each(['resource:deploy/prod', 'resource:db', 'resource:deploy/', 'resource:gpu-0/slot_1.a'])('accepts %j', (key) => {
    expect(lockKeyProblem(key)).toBeUndefined();
  });

  it.each([
    ['resource:', /names no resource/],
    ['resource:/x', /empty component/],
    ['resource:a//b', /empty component/],
    ['resource:a b', /"a b", which is not a name/],
    ['resource:.hidden', /which is not a name/],
    ['resource:a/../b', /which is not a name/],
    ['resource:a..b', /"\.\." in the component/],
    ['RESOURCE:db', /wrong case/],
  ])('rejects %j and says how to write a resource key', (key, why) => {
    const problem = lockKeyProblem(key);
    expect(problem).toMatch(why);
    expect(problem).toContain('like "resource:deploy/prod"');
  });

  it('overlap among resource keys by components, never with a path key', () => {
    expect(locksOverlap('resource:deploy', 'resource:deploy/prod')).toBe(true);
    expect(locksOverlap('resource:deploy/', 'resource:deploy')).toBe(true);
    expect(locksOverlap('resource:deploy/prod', 'resource:deploy/production')).toBe(false);
    expect(locksOverlap('resource:db', 'db')).toBe(false);
    expect(locksOverlap('resource:db', 'resource:dbx')).toBe(false);
  });

  it('grant no write scope, not even to a path spelled like them', () => {
    expect(pathInScope('resource:deploy/prod', ['resource:deploy'])).toBe(false);
    expect(pathInScope('deploy/prod', ['resource:deploy'])).toBe(false);
    expect(outOfScope(['src/a.ts', 'deploy/x'], ['resource:deploy', 'src/'])).toEqual(['deploy/x']);
  });
});

describe('pathInScope and outOfScope', () => {
  it('covers a path equal to a lock or under a subtree lock', () => {
    expect(pathInScope('src/a.ts', ['src/'])).toBe(true);
    expect(pathInScope('src/a.ts', ['src'])).toBe(true);
    expect(pathInScope('src/a.ts', ['src/a.ts'])).toBe(true);
    expect(pathInScope('src/ab.ts', ['src/a'])).toBe(false);
    expect(pathInScope('src/a.ts', [])).toBe(false);
    // A narrower lock does not cover its parent directory.
    expect(pathInScope('src/a.ts', ['src/a.ts/x'])).toBe(false);
  });

  it('opens .github/workflows only through a lock at or under it', () => {
    expect(pathInScope('.github/workflows/ci.yml', ['.github/'])).toBe(false);
    expect(pathInScope('.github/workflows/ci.yml', ['.github'])).toBe(false);
    expect(pathInScope('.github/dependabot.yml', ['.github/'])).toBe(true);
    expect(pathInScope('.github/workflows/ci.yml', ['.github/workflows'])).toBe(true);
    expect(pathInScope('.github/workflows/ci.yml', ['.github/workflows/'])).toBe(true);
    expect(pathInScope('.github/workflows/ci.yml', ['.github/workflows/ci.yml'])).toBe(true);
    expect(pathInScope('.github/workflows/release.yml', ['.github/workflows/ci.yml'])).toBe(false);
    // Letter case does not sneak past the protection.
    expect(pathInScope('.GitHub/Workflows/ci.yml', ['.GitHub/'])).toBe(false);
  });

  it('lists the offending paths once each, in order', () => {
    const paths = ['src/a.ts', 'README.md', 'src/b/c.ts', 'README.md', '.github/workflows/x.yml', 'lib/z.ts'];
    expect(outOfScope(paths, ['src/', '.github/'])).toEqual(['README.md', '.github/workflows/x.yml', 'lib/z.ts']);
  });
});

/** Short paths over a tiny alphabet, so that prefixes and equal keys are common. */
const component = fc.constantFrom('a', 'b', 'ab', '.github', 'workflows', 'x.ts');
const path = fc.array(component, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
const key = fc.tuple(path, fc.boolean()).map(([p, slash]) => (slash ? `${p}/` : p));

describe('properties', () => {
  it('locksOverlap is symmetric and reflexive', () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(locksOverlap(a, b)).toBe(locksOverlap(b, a));
        expect(locksOverlap(a, a)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('a path in scope overlaps the lock that covers it; a lock overlapping as an ancestor covers it (outside workflows)', () => {
    fc.assert(
      fc.property(path, fc.array(key, { maxLength: 4 }), (p, locks) => {
        const inScope = pathInScope(p, locks);
        // In scope ⇒ some lock overlaps the path.
        if (inScope) expect(locks.some((l) => locksOverlap(l, p))).toBe(true);
        // Outside .github/workflows, in scope ⇔ some lock overlaps the path and is equal to it or above it.
        const underWorkflows = p === '.github/workflows' || p.startsWith('.github/workflows/');
        if (!underWorkflows) {
          const expected = locks.some((l) => locksOverlap(l, p) && normalizeLockKey(l).length <= p.length);
          expect(inScope).toBe(expected);
        }
        // Scope is monotone: more locks never take a path out of scope.
        expect(pathInScope(p, [...locks, 'b/'])).toBe(inScope || pathInScope(p, ['b/']));
        expect(outOfScope([p], locks)).toEqual(inScope ? [] : [p]);
      }),
      { numRuns: 2000 },
    );
  });
});
