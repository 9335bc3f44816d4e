import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { AgoraError, errorMessage } from '../errors.js';
import { writeFileAtomic } from '../atomic-write.js';

/**
 * Local signing keys for the offline / self-hosted signer: ECDSA P-256, private keys as PKCS#8 PEM, public
 * keys as SPKI PEM. Every key problem is an AgoraError that names the file and what was expected.
 */

export const PRIVATE_KEY_FILE = 'agora-signing.key.pem';
export const PUBLIC_KEY_FILE = 'agora-signing.pub.pem';
/** Environment variable holding the signing key: a path, or the PEM itself. */
export const SIGNING_KEY_ENV = 'AGORA_SIGNING_KEY';

const EXPECTED_PRIVATE = 'an ECDSA P-256 private key in PEM (PKCS#8 "BEGIN PRIVATE KEY" or SEC1 "BEGIN EC PRIVATE KEY")';
const EXPECTED_PUBLIC = 'an ECDSA P-256 public key in PEM (SPKI, "BEGIN PUBLIC KEY")';

export interface KeyPairPem {
  /** PKCS#8 PEM. */
  privateKeyPem: string;
  /** SPKI PEM. */
  publicKeyPem: string;
}

export interface LoadedPrivateKey {
  key: KeyObject;
  /** The private key re-encoded as PKCS#8 PEM. */
  privateKeyPem: string;
  /** Its public half, SPKI PEM. */
  publicKeyPem: string;
  /** sha256 of the SPKI DER, hex: the key hint carried in bundles. */
  keyId: string;
  /** Where it came from: a file path, or `AGORA_SIGNING_KEY` / `inline PEM`. */
  source: string;
}

export interface LoadedPublicKey {
  key: KeyObject;
  publicKeyPem: string;
  keyId: string;
  source: string;
}

/** A fresh ECDSA P-256 key pair. */
export function generateSigningKey(): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** sha256 of the SPKI DER encoding of `publicKey`, hex. Stable across PEM formatting differences. */
export function keyIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function keyExists(path: string): AgoraError {
  return new AgoraError(
    'key-exists',
    `${path} already exists; refusing to overwrite a signing key`,
    'Move or delete the existing key first if you really mean to replace it (bundles it signed will no longer verify against a new key), or write the new pair to another directory.',
  );
}

/**
 * Generates a key pair and writes `agora-signing.key.pem` (mode 0600) and `agora-signing.pub.pem` into
 * `dir`, atomically. Refuses to overwrite either file (AgoraError `key-exists` naming it).
 */
export async function writeKeyPair(dir: string): Promise<{ privateKeyPath: string; publicKeyPath: string; publicKeyPem: string; keyId: string }> {
  const privateKeyPath = join(dir, PRIVATE_KEY_FILE);
  const publicKeyPath = join(dir, PUBLIC_KEY_FILE);
  // Check both before writing either, so a refusal leaves nothing half-written.
  for (const path of [privateKeyPath, publicKeyPath]) if (await exists(path)) throw keyExists(path);
  const pair = generateSigningKey();
  try {
    await writeFileAtomic(privateKeyPath, pair.privateKeyPem, { mode: 0o600, exclusive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw keyExists(privateKeyPath);
    throw error;
  }
  try {
    await writeFileAtomic(publicKeyPath, pair.publicKeyPem, { mode: 0o644, exclusive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw keyExists(publicKeyPath);
    throw error;
  }
  return { privateKeyPath, publicKeyPath, publicKeyPem: pair.publicKeyPem, keyId: keyIdOf(pair.publicKeyPem) };
}

function looksLikePem(text: string): boolean {
  return /-----BEGIN [A-Z0-9 ]+-----/.test(text);
}

/** Reads `pemOrPath`: PEM text is used as is, anything else is a file path (relative to `cwd`). */
async function readKeyText(pemOrPath: string, what: string, cwd: string, sourceName?: string): Promise<{ text: string; source: string }> {
  if (looksLikePem(pemOrPath)) return { text: pemOrPath, source: sourceName ?? 'inline PEM' };
  const path = isAbsolute(pemOrPath) ? pemOrPath : resolve(cwd, pemOrPath);
  try {
    return { text: await readFile(path, 'utf8'), source: path };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const expected = what === 'signing key' ? EXPECTED_PRIVATE : EXPECTED_PUBLIC;
    throw new AgoraError(
      'key-unreadable',
      `${path}: cannot read ${what} (${code ?? String(error)})`,
      code === 'EISDIR'
        ? `Pass the key file itself, not its directory: a file holding ${expected}.`
        : `Check the path${code === 'ENOENT' ? '' : ' and its permissions'}; expected a file holding ${expected}.`,
    );
  }
}

function badKey(source: string, problem: string, expected: string, hint?: string): AgoraError {
  return new AgoraError('key-invalid', `${source}: ${problem}; expected ${expected}`, hint ?? keyHint(expected));
}

/** What to pass instead of a key that is not one: the file `agora keys generate` writes for that half. */
function keyHint(expected: string): string {
  return expected === EXPECTED_PUBLIC
    ? `Pass the signer's public key: the ${PUBLIC_KEY_FILE} that \`agora keys generate\` wrote beside its private key.`
    : `Pass the private key \`agora keys generate\` wrote (${PRIVATE_KEY_FILE}), unencrypted.`;
}

/** Describes a key's algorithm for an error message: "an RSA key", "an EC key on secp384r1". */
function describe(key: KeyObject): string {
  const type = key.asymmetricKeyType;
  if (type === 'ec') return `an EC key on curve ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown'}`;
  return `an ${String(type).toUpperCase()} key`;
}

function requireP256(key: KeyObject, source: string, expected: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw badKey(source, `is ${describe(key)}`, expected, 'Agora signs with ECDSA P-256 only; make a key pair with `agora keys generate`.');
  }
}

/**
 * Loads an ECDSA P-256 private key from PEM text or a file path. Wrong format, wrong algorithm or curve, an
 * encrypted key, or a public key where the private one is needed: AgoraError `key-invalid` naming the source.
 */
export async function loadPrivateKey(pemOrPath: string, options: { cwd?: string; sourceName?: string } = {}): Promise<LoadedPrivateKey> {
  const { text, source } = await readKeyText(pemOrPath, 'signing key', options.cwd ?? process.cwd(), options.sourceName);
  if (!looksLikePem(text)) throw badKey(source, 'is not PEM', EXPECTED_PRIVATE);
  if (/-----BEGIN (PUBLIC KEY|CERTIFICATE|RSA PUBLIC KEY)-----/.test(text) && !/PRIVATE KEY-----/.test(text)) {
    throw badKey(
      source,
      'holds a public key or certificate, not a private key',
      EXPECTED_PRIVATE,
      `Signing needs the private half (${PRIVATE_KEY_FILE}); the .pub.pem file is for verifying.`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MISSING_PASSPHRASE' || /ENCRYPTED/.test(text)) {
      throw badKey(
        source,
        'is encrypted with a passphrase',
        `${EXPECTED_PRIVATE}, unencrypted`,
        'Decrypt it, e.g. `openssl pkcs8 -in key.pem -out plain.pem` (and keep the result mode 0600).',
      );
    }
    throw badKey(source, `is not a readable private key (${errorMessage(error)})`, EXPECTED_PRIVATE);
  }
  requireP256(key, source, EXPECTED_PRIVATE);
  const publicKey = createPublicKey(key);
  return {
    key,
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
    source,
  };
}

/**
 * Loads an ECDSA P-256 public key (SPKI PEM) from PEM text or a file path. A private key is refused: the
 * verifier should be handed only the public half.
 */
export async function loadPublicKey(pemOrPath: string, options: { cwd?: string; sourceName?: string } = {}): Promise<LoadedPublicKey> {
  const { text, source } = await readKeyText(pemOrPath, 'public key', options.cwd ?? process.cwd(), options.sourceName);
  if (!looksLikePem(text)) throw badKey(source, 'is not PEM', EXPECTED_PUBLIC);
  if (/PRIVATE KEY-----/.test(text)) {
    throw badKey(source, 'holds a private key', EXPECTED_PUBLIC, `Pass the public half (${PUBLIC_KEY_FILE}); a private key should never leave the signer.`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch (error) {
    throw badKey(source, `is not a readable public key (${errorMessage(error)})`, EXPECTED_PUBLIC);
  }
  requireP256(key, source, EXPECTED_PUBLIC);
  return { key, publicKeyPem: key.export({ type: 'spki', format: 'pem' }).toString(), keyId: keyIdOf(key), source };
}

export interface SigningKeySources {
  /** `--key <path>` of `agora orch audit` (highest precedence). */
  keyFlag?: string;
  /** The environment; `AGORA_SIGNING_KEY` may hold a path or the PEM itself. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths and the default `./agora-signing.key.pem` resolve against. */
  cwd: string;
}

/**
 * Finds and loads the signing key: the flag, else `AGORA_SIGNING_KEY`, else `<cwd>/agora-signing.key.pem`.
 * None present → AgoraError `signing-key-missing` listing the three ways to provide one.
 */
export async function resolveSigningKey(sources: SigningKeySources): Promise<LoadedPrivateKey & { from: 'flag' | 'env' | 'default' }> {
  if (sources.keyFlag) return { ...(await loadPrivateKey(sources.keyFlag, { cwd: sources.cwd })), from: 'flag' };
  const fromEnv = sources.env?.[SIGNING_KEY_ENV];
  if (fromEnv && fromEnv.trim() !== '') {
    return { ...(await loadPrivateKey(fromEnv, { cwd: sources.cwd, sourceName: SIGNING_KEY_ENV })), from: 'env' };
  }
  const fallback = resolve(sources.cwd, PRIVATE_KEY_FILE);
  if (!(await exists(fallback))) {
    throw new AgoraError(
      'signing-key-missing',
      `no signing key: no --key given, ${SIGNING_KEY_ENV} is unset, and ${fallback} does not exist`,
      `Pass --key <file>, set ${SIGNING_KEY_ENV} to a key file or its PEM, or make ${PRIVATE_KEY_FILE} in ${sources.cwd} with \`agora keys generate\`.`,
    );
  }
  return { ...(await loadPrivateKey(fallback)), from: 'default' };
}
