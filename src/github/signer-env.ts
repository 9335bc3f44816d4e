import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadPrivateKey } from '../audit/keys.js';
import { trustMaterialFromRoot } from '../audit/trust.js';
import { AgoraError, InvalidInputError, isAgoraError, errorMessage } from '../errors.js';
import type { AppSigner } from './audit-release.js';

/**
 * The app's audit signer from its environment:
 * - `AGORA_SIGNING_KEY` (PEM text or a path): a local ECDSA P-256 key.
 * - `AGORA_SIGNER=keyless`: a Fulcio certificate for an OIDC identity, logged in Rekor. The token is
 *   `SIGSTORE_ID_TOKEN`, else GitHub Actions' OIDC token (`ACTIONS_ID_TOKEN_REQUEST_URL` +
 *   `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, audience `sigstore`), fetched fresh for every signature.
 *   `AGORA_FULCIO_URL` / `AGORA_REKOR_URL` (default public-good Sigstore), `AGORA_TSA_URL` (optional),
 *   `AGORA_REKOR_ENTRY_TYPE` (`dsse` default, or `intoto`). The gate checks the signature only with
 *   `AGORA_TRUSTED_ROOT` (a trusted_root.json path) and both `AGORA_CERT_IDENTITY` and `AGORA_CERT_ISSUER`.
 * Neither: undefined (unsigned). Every bad or missing value is an InvalidInputError naming the variable.
 */

/** Public-good Sigstore (the same defaults as `agora orch audit --keyless`). */
export const PUBLIC_FULCIO_URL = 'https://fulcio.sigstore.dev';
export const PUBLIC_REKOR_URL = 'https://rekor.sigstore.dev';

/** Variables that only mean something to the keyless signer. */
const KEYLESS_ONLY = [
  'AGORA_FULCIO_URL',
  'AGORA_REKOR_URL',
  'AGORA_TSA_URL',
  'AGORA_REKOR_ENTRY_TYPE',
  'AGORA_TRUSTED_ROOT',
  'AGORA_CERT_IDENTITY',
  'AGORA_CERT_ISSUER',
] as const;

function bad(name: string, message: string, hint: string): InvalidInputError {
  return new InvalidInputError('invalid-environment', name, [{ path: name, message }], hint);
}

/** A value that is set and not blank, trimmed; undefined otherwise. */
function value(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function httpUrl(env: NodeJS.ProcessEnv, name: string, fallback?: string): string | undefined {
  const text = value(env, name);
  if (text === undefined) return fallback;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(name, `"${text}" is not a URL`, `set it to the service's base URL, e.g. ${name}=${fallback ?? 'https://timestamp.example.com'}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw bad(name, `"${text}" is not an http(s) URL`, `set it to the service's base URL, e.g. ${name}=${fallback ?? 'https://timestamp.example.com'}`);
  }
  return text.replace(/\/+$/, '');
}

/** The app's signer as the environment configures it; undefined when it configures none. */
export async function signerFromEnv(env: NodeJS.ProcessEnv, cwd: string): Promise<AppSigner | undefined> {
  const keyText = env.AGORA_SIGNING_KEY;
  const kind = value(env, 'AGORA_SIGNER');
  if (kind !== undefined && kind !== 'key' && kind !== 'keyless') {
    throw bad(
      'AGORA_SIGNER',
      `"${kind}" is not a signer`,
      'set AGORA_SIGNER=keyless (Sigstore: Fulcio + Rekor) or AGORA_SIGNER=key (with AGORA_SIGNING_KEY), or leave it unset',
    );
  }
  if (kind === 'keyless') {
    if (keyText !== undefined) {
      throw bad(
        'AGORA_SIGNING_KEY',
        'is set, but AGORA_SIGNER=keyless signs without a key',
        'unset AGORA_SIGNING_KEY for keyless signing, or unset AGORA_SIGNER to sign with the key',
      );
    }
    return keylessFromEnv(env, cwd);
  }
  const stray = KEYLESS_ONLY.filter((n) => env[n] !== undefined);
  if (stray.length > 0) {
    throw bad(
      stray[0]!,
      `is set, but the signer is not keyless (AGORA_SIGNER is ${kind === undefined ? 'unset' : `"${kind}"`})`,
      `set AGORA_SIGNER=keyless to sign keyless, or unset ${stray.join(', ')}`,
    );
  }
  if (keyText === undefined || keyText.trim() === '') {
    if (kind === 'key' || keyText !== undefined) {
      throw bad(
        'AGORA_SIGNING_KEY',
        kind === 'key' ? 'is not set, but AGORA_SIGNER=key' : 'is empty',
        'set it to the PEM text or the path of an ECDSA P-256 private key (`agora keys generate` writes one), or unset AGORA_SIGNER',
      );
    }
    return undefined;
  }
  try {
    const key = await loadPrivateKey(keyText, { cwd, sourceName: 'AGORA_SIGNING_KEY' });
    return { kind: 'key', privateKeyPem: key.privateKeyPem };
  } catch (e) {
    if (!isAgoraError(e)) throw e;
    throw bad('AGORA_SIGNING_KEY', e.message, e.hint ?? 'set it to the PEM text or the path of an ECDSA P-256 private key (`agora keys generate` writes one)');
  }
}

async function keylessFromEnv(env: NodeJS.ProcessEnv, cwd: string): Promise<AppSigner> {
  const identityToken = tokenSource(env);
  const fulcioUrl = httpUrl(env, 'AGORA_FULCIO_URL', PUBLIC_FULCIO_URL) as string;
  const rekorUrl = httpUrl(env, 'AGORA_REKOR_URL', PUBLIC_REKOR_URL) as string;
  const tsaUrl = httpUrl(env, 'AGORA_TSA_URL');
  const entryType = value(env, 'AGORA_REKOR_ENTRY_TYPE');
  if (entryType !== undefined && entryType !== 'dsse' && entryType !== 'intoto') {
    throw bad('AGORA_REKOR_ENTRY_TYPE', `"${entryType}" is not a Rekor entry type`, 'set it to dsse (the default) or intoto, or unset it');
  }
  const certificateIdentity = value(env, 'AGORA_CERT_IDENTITY');
  const certificateIssuer = value(env, 'AGORA_CERT_ISSUER');
  if ((certificateIdentity === undefined) !== (certificateIssuer === undefined)) {
    const [set, unset] = certificateIdentity === undefined ? ['AGORA_CERT_ISSUER', 'AGORA_CERT_IDENTITY'] : ['AGORA_CERT_IDENTITY', 'AGORA_CERT_ISSUER'];
    throw bad(
      unset,
      `is not set, but ${set} is: the gate checks a keyless signature against both`,
      `set ${unset} too (e.g. AGORA_CERT_ISSUER=https://token.actions.githubusercontent.com and AGORA_CERT_IDENTITY=https://github.com/<owner>/<repo>/.github/workflows/<file>@refs/heads/<branch>), or unset ${set}`,
    );
  }
  const trustedRoot = value(env, 'AGORA_TRUSTED_ROOT') === undefined ? undefined : await readTrustedRoot(value(env, 'AGORA_TRUSTED_ROOT') as string, cwd);
  return {
    kind: 'keyless',
    fulcioUrl,
    rekorUrl,
    identityToken,
    ...(tsaUrl ? { tsaUrl } : {}),
    ...(entryType ? { rekorEntryType: entryType } : {}),
    ...(trustedRoot !== undefined ? { trustedRoot } : {}),
    ...(certificateIdentity ? { certificateIdentity } : {}),
    ...(certificateIssuer ? { certificateIssuer } : {}),
  };
}

async function readTrustedRoot(path: string, cwd: string): Promise<unknown> {
  const file = resolve(cwd, path);
  const hint =
    'set it to the path of a trusted_root.json for your Sigstore instance (e.g. from `cosign trusted-root create`, or sigstore/root-signing for public-good); agora never fetches one';
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw bad('AGORA_TRUSTED_ROOT', `${file}: cannot be read (${code === 'ENOENT' ? 'no such file' : errorMessage(e)})`, hint);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad('AGORA_TRUSTED_ROOT', `${file}: not JSON (${errorMessage(e)})`, hint);
  }
  try {
    trustMaterialFromRoot(json, file);
  } catch (e) {
    if (!isAgoraError(e)) throw e;
    throw bad('AGORA_TRUSTED_ROOT', e.message, hint);
  }
  return json;
}

/** Where the OIDC token comes from: SIGSTORE_ID_TOKEN, else the Actions token endpoint (fresh per call). */
function tokenSource(env: NodeJS.ProcessEnv): () => Promise<string> {
  const fixed = value(env, 'SIGSTORE_ID_TOKEN');
  if (fixed !== undefined) return async () => fixed;
  const url = value(env, 'ACTIONS_ID_TOKEN_REQUEST_URL');
  const token = value(env, 'ACTIONS_ID_TOKEN_REQUEST_TOKEN');
  const grant = 'in GitHub Actions grant the job `permissions: id-token: write`; elsewhere set SIGSTORE_ID_TOKEN to an OIDC token with audience sigstore';
  if (url === undefined && token === undefined) {
    throw bad(
      'SIGSTORE_ID_TOKEN',
      "AGORA_SIGNER=keyless needs an OIDC identity token: neither SIGSTORE_ID_TOKEN nor GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_TOKEN is set",
      `${grant}, or sign with a key (AGORA_SIGNING_KEY) instead`,
    );
  }
  if (url === undefined || token === undefined) {
    const missing = url === undefined ? 'ACTIONS_ID_TOKEN_REQUEST_URL' : 'ACTIONS_ID_TOKEN_REQUEST_TOKEN';
    throw bad(
      missing,
      `is not set, but ${missing === 'ACTIONS_ID_TOKEN_REQUEST_URL' ? 'ACTIONS_ID_TOKEN_REQUEST_TOKEN' : 'ACTIONS_ID_TOKEN_REQUEST_URL'} is: the Actions OIDC token needs both`,
      grant,
    );
  }
  let request: URL;
  try {
    request = new URL(url);
  } catch {
    throw bad('ACTIONS_ID_TOKEN_REQUEST_URL', `"${url}" is not a URL`, grant);
  }
  request.searchParams.set('audience', 'sigstore');
  return () => fetchActionsToken(request, token);
}

/** GitHub Actions' OIDC token for audience `sigstore`: GET with `Authorization: bearer`, JSON `{ value }`. */
export async function fetchActionsToken(request: URL, bearer: string): Promise<string> {
  const where = `${request.origin}${request.pathname}`; // the query may carry tokens: not in messages
  const hint =
    'the Actions OIDC token could not be obtained: check the job has `permissions: id-token: write` and is still running (its request token expires with the job)';
  let res: Response;
  try {
    res = await fetch(request, { headers: { authorization: `bearer ${bearer}`, accept: 'application/json' } });
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    throw new AgoraError(
      'oidc-token-failed',
      `the Actions OIDC token request to ${where} failed: ${errorMessage(e)}${cause instanceof Error ? ` (${cause.message})` : ''}`,
      hint,
    );
  }
  const text = await res.text();
  if (!res.ok) throw new AgoraError('oidc-token-failed', `the Actions OIDC token request to ${where} answered ${res.status} ${res.statusText}`.trim(), hint);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AgoraError('oidc-token-failed', `the Actions OIDC token endpoint ${where} answered ${res.status} with something that is not JSON`, hint);
  }
  const v = (json as { value?: unknown } | null)?.value;
  if (typeof v !== 'string' || v === '')
    throw new AgoraError('oidc-token-failed', `the Actions OIDC token endpoint ${where} answered without a token (no string "value")`, hint);
  return v;
}
