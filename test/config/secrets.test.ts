import { describe, expect, it } from 'vitest';
import { checkConfiguredSecrets, checkSecretValue, MIN_SECRET_LENGTH, SecretTooShortError } from '../../src/config/secrets.js';
import { AgoraError } from '../../src/errors.js';

function caught(fn: () => void): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('secret values', () => {
  it(`refuses a value shorter than ${MIN_SECRET_LENGTH} characters, naming the secret, who needs it and the fix`, () => {
    const e = caught(() => checkSecretValue('API_TOKEN', 'abc1234', 'subagent reviewer'));
    expect(e).toBeInstanceOf(SecretTooShortError);
    expect(e).toBeInstanceOf(AgoraError);
    const err = e as SecretTooShortError;
    expect(err.code).toBe('secret-too-short');
    expect(err.secretName).toBe('API_TOKEN');
    expect(err.message).toBe('secret API_TOKEN (needed by subagent reviewer) is shorter than 8 characters, too short to redact from logs reliably');
    expect(err.hint).toBe('give API_TOKEN a value of at least 8 characters (a real token or key is longer), or stop declaring it as a secret');
    expect(`${err.message}${err.hint}`).not.toContain('abc1234');
  });

  it('accepts 8 characters; line breaks do not count', () => {
    expect(() => checkSecretValue('A', 'abcd1234', 'x')).not.toThrow();
    expect(() => checkSecretValue('A', 'abcd\n123\r\n', 'x')).toThrow(SecretTooShortError);
  });

  it("checks the subagents' declared secrets that the environment sets, when a server starts", () => {
    const config = { subagents: { reviewer: { command: ['r'], secrets: ['REVIEW_TOKEN', 'UNSET_TOKEN'] }, plain: { command: ['p'] } } };
    expect(() => checkConfiguredSecrets(config, { REVIEW_TOKEN: 'long-enough-1' })).not.toThrow();
    const e = caught(() => checkConfiguredSecrets(config, { REVIEW_TOKEN: 'tiny' })) as SecretTooShortError;
    expect(e).toBeInstanceOf(SecretTooShortError);
    expect(e.message).toContain('secret REVIEW_TOKEN (needed by subagent reviewer)');
  });
});
