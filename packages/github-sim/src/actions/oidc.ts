/**
 * The OIDC issuer of the simulator's Actions: RS256 JWTs with GitHub's claims for a job that has
 * `id-token: write`, requested from `ACTIONS_ID_TOKEN_REQUEST_URL` with `ACTIONS_ID_TOKEN_REQUEST_TOKEN`
 * (as `@actions/core`'s getIDToken does), and the discovery document and JWKS a verifier reads.
 */
import { createSign, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';

/** How long an ID token lives (GitHub's are short-lived; this is the order of theirs). */
export const ID_TOKEN_TTL_SECONDS = 300;

export class OidcIssuer {
  private key: { privateKey: KeyObject; publicKey: KeyObject; kid: string } | undefined;

  /** `issuer` is the `iss` of every token and the base of the discovery URLs. */
  constructor(readonly issuer: string) {}

  private keys(): { privateKey: KeyObject; publicKey: KeyObject; kid: string } {
    if (!this.key) {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      this.key = { privateKey, publicKey, kid: randomUUID() };
    }
    return this.key;
  }

  /** `/.well-known/openid-configuration`. */
  configuration(): Record<string, unknown> {
    return {
      issuer: this.issuer,
      jwks_uri: `${this.issuer}/.well-known/jwks`,
      subject_types_supported: ['public', 'pairwise'],
      response_types_supported: ['id_token'],
      claims_supported: [
        'sub',
        'aud',
        'exp',
        'iat',
        'iss',
        'jti',
        'nbf',
        'ref',
        'sha',
        'repository',
        'repository_owner',
        'run_id',
        'workflow',
        'workflow_ref',
        'job_workflow_ref',
        'event_name',
        'actor',
        'runner_environment',
      ],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid'],
    };
  }

  /** `/.well-known/jwks`: the public signing key. */
  jwks(): { keys: Record<string, unknown>[] } {
    const { publicKey, kid } = this.keys();
    return { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] };
  }

  /** A signed token with `claims` plus iss, jti, iat, nbf and exp. */
  sign(claims: Record<string, unknown>, nowSeconds = Math.floor(Date.now() / 1000)): string {
    const { privateKey, kid } = this.keys();
    const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const body = { jti: randomUUID(), ...claims, iss: this.issuer, nbf: nowSeconds - 5, iat: nowSeconds, exp: nowSeconds + ID_TOKEN_TTL_SECONDS };
    const input = `${b64({ typ: 'JWT', alg: 'RS256', kid })}.${b64(body)}`;
    const signature = createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url');
    return `${input}.${signature}`;
  }
}
