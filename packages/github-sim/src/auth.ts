/** GitHub App authentication: RS256 app JWTs and installation access tokens. */
import { createPublicKey, generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { HttpError } from './http.js';

/** A permission level; `write` implies `read` (and `admin` implies both). */
export type PermissionLevel = 'read' | 'write' | 'admin';
export type Permissions = Record<string, PermissionLevel>;

const LEVEL: Record<PermissionLevel, number> = { read: 1, write: 2, admin: 3 };

/** True when `granted` covers `need` for every named permission. */
export function permits(granted: Permissions, need: Permissions): boolean {
  return Object.entries(need).every(([name, level]) => {
    const have = granted[name];
    return have !== undefined && LEVEL[have] >= LEVEL[level];
  });
}

/** A fresh RSA key pair in the PEM form GitHub hands out (PKCS#1 "RSA PRIVATE KEY"). */
export function generateAppKey(): { privateKey: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), publicKey };
}

function b64urlJson(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
}

const jwtError = (message: string): HttpError => new HttpError(401, message);

/**
 * Verifies an app JWT like GitHub: RS256 signature by the app's key, `iat` not in the future
 * (60 s drift allowed), `exp` in the future and at most 10 minutes after `iat`, `iss` = app id
 * (or client id). Returns the app id. `findKey` maps an issuer to its public key.
 */
export function verifyAppJwt(token: string, nowSeconds: number, findKey: (iss: string) => { appId: number; publicKey: KeyObject } | undefined): number {
  const parts = token.split('.');
  if (parts.length !== 3) throw jwtError('A JSON web token could not be decoded');
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = b64urlJson(parts[0]!) as Record<string, unknown>;
    claims = b64urlJson(parts[1]!) as Record<string, unknown>;
  } catch {
    throw jwtError('A JSON web token could not be decoded');
  }
  if (!header || typeof header !== 'object' || header.alg !== 'RS256') {
    throw jwtError("'alg' must be RS256");
  }
  if (!claims || typeof claims !== 'object') throw jwtError('A JSON web token could not be decoded');
  const iss = claims.iss;
  if (typeof iss !== 'string' && typeof iss !== 'number') throw jwtError("'Issuer' claim ('iss') must be an Integer");
  const app = findKey(String(iss));
  if (!app) throw jwtError(`Integration not found`);
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
  const ok = verify('RSA-SHA256', signed, app.publicKey, Buffer.from(parts[2]!, 'base64url'));
  if (!ok) throw jwtError('A JSON web token could not be decoded');
  const { iat, exp } = claims;
  if (typeof iat !== 'number' || !Number.isInteger(iat)) {
    throw jwtError("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.");
  }
  if (typeof exp !== 'number' || !Number.isInteger(exp)) {
    throw jwtError("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.");
  }
  if (iat > nowSeconds + 60) throw jwtError("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.");
  if (exp <= nowSeconds) throw jwtError("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.");
  if (exp - iat > 600) throw jwtError("'Expiration time' claim ('exp') is too far in the future");
  return app.appId;
}

/** An installation access token as issued. */
export interface InstallationToken {
  token: string;
  installationId: number;
  appId: number;
  expiresAt: number;
  permissions: Permissions;
  /** Repository full names the token is limited to; null = all of the installation's. */
  repositories: string[] | null;
}

/** Issues and resolves installation tokens (`ghs_…`, 1 h lifetime). */
export class TokenStore {
  private readonly tokens = new Map<string, InstallationToken>();

  issue(t: Omit<InstallationToken, 'token'>): InstallationToken {
    const token = `ghs_${randomBytes(27).toString('base64url').replace(/[-_]/g, 'A').slice(0, 36)}`;
    const issued = { ...t, token };
    this.tokens.set(token, issued);
    return issued;
  }

  /** The live token, or undefined when unknown or expired. */
  lookup(token: string, nowMs: number): InstallationToken | undefined {
    const t = this.tokens.get(token);
    if (!t) return undefined;
    if (t.expiresAt <= nowMs) return undefined;
    return t;
  }

  /** Expires a token (tests use this to prove expiry is enforced). */
  expire(token: string): void {
    const t = this.tokens.get(token);
    if (t) t.expiresAt = 0;
  }
}

export { createPublicKey };
