import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS_DOC, renderErrorsDoc } from '../../scripts/errors-doc.js';
import { AgoraError, errorMessage } from '../../src/errors.js';
import { ERROR_CODES } from '../../src/error-codes.js';
import { ContentionError, LOST_RACE, retryOnConflict } from '../../src/retry-on-conflict.js';

describe('error codes', () => {
  it('docs/errors.md is what src/error-codes.ts renders (run `npm run docs:errors` after changing a code)', () => {
    expect(readFileSync(ERRORS_DOC, 'utf8')).toBe(renderErrorsDoc());
  });

  it('every code has a meaning, a fix and an exit status, and the doc lists each one', () => {
    const doc = renderErrorsDoc();
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(info.meaning.length, code).toBeGreaterThan(10);
      expect(info.fix.length, code).toBeGreaterThan(5);
      expect(Number.isInteger(info.exitCode) && info.exitCode > 0, code).toBe(true);
      expect(doc).toContain(`| \`${code}\` |`);
    }
  });

  it('an error takes its exit status from its code unless told otherwise, and keeps its cause', () => {
    const cause = new Error('EACCES');
    expect(new AgoraError('interrupted', 'x').exitCode).toBe(130);
    expect(new AgoraError('plan-invalid', 'x').exitCode).toBe(1);
    const e = new AgoraError('verify-failed', 'x', undefined, { exitCode: 3, cause });
    expect(e.exitCode).toBe(3);
    expect(e.cause).toBe(cause);
  });

  it('errorMessage reads anything thrown', () => {
    expect(errorMessage(new TypeError('bad'))).toBe('bad');
    expect(errorMessage({ message: 'from a plain object' })).toBe('from a plain object');
    expect(errorMessage('a string')).toBe('a string');
    expect(errorMessage(undefined)).toBe('undefined');
  });
});

describe('retryOnConflict', () => {
  it('retries while the attempt lost a race, and returns the first settled outcome', async () => {
    const seen: number[] = [];
    const out = await retryOnConflict('refs/agora/x', 5, async (n) => {
      seen.push(n);
      return n < 2 ? LOST_RACE : 'won';
    });
    expect(out).toBe('won');
    expect(seen).toEqual([0, 1, 2]);
  });

  it('gives up with a typed contention error naming what kept moving', async () => {
    let calls = 0;
    const err = await retryOnConflict('the state of run r-1', 3, async () => {
      calls += 1;
      return LOST_RACE;
    }).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect(err).toBeInstanceOf(ContentionError);
    expect(err).toMatchObject({ code: 'contended', subject: 'the state of run r-1', tries: 3, exitCode: 1 });
    expect((err as Error).message).toMatch(/^the state of run r-1 kept changing: 3 attempts in a row lost/);
  });
});
