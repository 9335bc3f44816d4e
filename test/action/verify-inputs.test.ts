import { afterEach, describe, expect, it } from 'vitest';
import { readVerifyInputs } from '../../src/action/inputs.js';
import { AgoraError } from '../../src/errors.js';

/** `mode: verify`'s inputs as the runner hands them over (INPUT_<NAME> variables), checked before anything is fetched. */
describe("the verify mode's signer inputs", () => {
  const set: string[] = [];
  function inputs(values: Record<string, string>): void {
    for (const [name, value] of Object.entries({ token: 'ghs_test', ...values })) {
      const key = `INPUT_${name.toUpperCase()}`;
      process.env[key] = value;
      set.push(key);
    }
  }
  afterEach(() => {
    for (const key of set.splice(0)) delete process.env[key];
  });

  const refusal = (): AgoraError => {
    try {
      readVerifyInputs();
    } catch (e) {
      if (e instanceof AgoraError) return e;
      throw e;
    }
    throw new Error('the inputs were accepted');
  };

  it('refuses a trusted root with no signer to pin: it would check no signature', () => {
    inputs({ 'trusted-root': '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}' });
    const e = refusal();
    expect(e.code).toBe('action-input');
    expect(e.message).toContain('`trusted-root` is given without a signer to pin');
    expect(e.hint).toContain('certificate-identity');
  });

  it('takes a trusted root beside a pinned identity, or a public key', () => {
    inputs({
      'trusted-root': 'trusted_root.json',
      'certificate-identity': 'https://github.com/o/r/.github/workflows/w.yml@refs/heads/main',
      'certificate-oidc-issuer': 'https://token.actions.githubusercontent.com',
    });
    expect(readVerifyInputs()).toMatchObject({ trustedRoot: 'trusted_root.json', certificateIdentity: expect.stringContaining('w.yml') });
    inputs({ 'certificate-identity': '', 'certificate-oidc-issuer': '', 'public-key': '.github/agora-signing.pub.pem' });
    expect(readVerifyInputs()).toMatchObject({ trustedRoot: 'trusted_root.json', publicKey: '.github/agora-signing.pub.pem' });
  });

  it('refuses the other bad combinations, each naming the inputs', () => {
    inputs({ 'certificate-identity': 'x' });
    expect(refusal().message).toContain('only one is given');
    inputs({ 'certificate-oidc-issuer': 'https://issuer', 'public-key': 'k.pem' });
    expect(refusal().message).toContain('do not go together');
    inputs({ 'public-key': '' });
    expect(refusal().message).toContain('needs input `trusted-root`');
  });
});
