import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/atomic-write.js';
import {
  PRIVATE_KEY_FILE,
  PUBLIC_KEY_FILE,
  generateSigningKey,
  keyIdOf,
  loadPrivateKey,
  loadPublicKey,
  resolveSigningKey,
  writeKeyPair,
} from '../../src/audit/keys.js';
import { AgoraError } from '../../src/errors.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agora-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `fn` and returns the AgoraError it throws (failing the test if it throws anything else or nothing). */
async function agoraError(fn: () => Promise<unknown>): Promise<AgoraError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AgoraError);
    return error as AgoraError;
  }
  throw new Error('expected an AgoraError, nothing was thrown');
}

describe('writeFileAtomic', () => {
  it('writes the whole file with the given mode and leaves no temporary files', async () => {
    const path = join(dir, 'out.txt');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, 'two', 0o600);
    expect(await readFile(path, 'utf8')).toBe('two');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['out.txt']);
  });

  it('with exclusive, refuses to replace an existing file and cleans up', async () => {
    const path = join(dir, 'once.txt');
    await writeFileAtomic(path, 'first', { exclusive: true });
    await expect(writeFileAtomic(path, 'second', { exclusive: true })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(path, 'utf8')).toBe('first');
    expect(await readdir(dir)).toEqual(['once.txt']);
  });

  it('concurrent writers never leave a torn file', async () => {
    const path = join(dir, 'race.txt');
    const bodies = Array.from({ length: 20 }, (_, i) => String(i).repeat(50_000));
    await Promise.all(bodies.map((b) => writeFileAtomic(path, b)));
    expect(bodies).toContain(await readFile(path, 'utf8'));
    expect(await readdir(dir)).toEqual(['race.txt']);
  });
});

describe('signing keys', () => {
  it('generates ECDSA P-256 keys as PKCS#8 / SPKI PEM that sign and verify', () => {
    const pair = generateSigningKey();
    expect(pair.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const pub = createPublicKey(pair.publicKeyPem);
    expect(pub.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const sig = sign('sha256', Buffer.from('x'), pair.privateKeyPem);
    expect(verify('sha256', Buffer.from('x'), pair.publicKeyPem, sig)).toBe(true);
  });

  it('writes the pair with a private 0600 key, and refuses to overwrite either file', async () => {
    const written = await writeKeyPair(dir);
    expect(written.privateKeyPath).toBe(join(dir, PRIVATE_KEY_FILE));
    expect((await stat(written.privateKeyPath)).mode & 0o777).toBe(0o600);
    const priv = await loadPrivateKey(written.privateKeyPath);
    const pub = await loadPublicKey(written.publicKeyPath);
    expect(priv.keyId).toBe(pub.keyId);
    expect(pub.keyId).toBe(written.keyId);
    const before = await readFile(written.privateKeyPath, 'utf8');

    const again = await agoraError(() => writeKeyPair(dir));
    expect(again.code).toBe('key-exists');
    expect(again.message).toContain(join(dir, PRIVATE_KEY_FILE));
    expect(await readFile(written.privateKeyPath, 'utf8')).toBe(before);

    // Only the public half present: still refused, naming that file, and no private key is written.
    const other = await mkdtemp(join(tmpdir(), 'agora-keys-'));
    try {
      await writeFile(join(other, PUBLIC_KEY_FILE), 'x');
      const err = await agoraError(() => writeKeyPair(other));
      expect(err.code).toBe('key-exists');
      expect(err.message).toContain(join(other, PUBLIC_KEY_FILE));
      expect(await readdir(other)).toEqual([PUBLIC_KEY_FILE]);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('key ids are the sha256 of the SPKI DER, independent of PEM formatting', () => {
    const pair = generateSigningKey();
    const reflowed = pair.publicKeyPem.replace(/\n/g, '\r\n');
    expect(keyIdOf(reflowed)).toBe(keyIdOf(pair.publicKeyPem));
    expect(keyIdOf(pair.publicKeyPem)).toMatch(/^[0-9a-f]{64}$/);
  });

  describe('keys in the wrong format are AgoraErrors naming the file and what was expected', () => {
    const cases: Array<[string, () => string, 'private' | 'public', RegExp]> = [
      ['not PEM', () => 'hello, I am not a key\n', 'private', /is not PEM; expected an ECDSA P-256 private key/],
      [
        'an RSA key',
        () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        'private',
        /is an RSA key; expected an ECDSA P-256 private key/,
      ],
      [
        'the wrong curve',
        () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        'private',
        /is an EC key on curve secp384r1; expected an ECDSA P-256/,
      ],
      [
        'a public key where the private one is needed',
        () => generateSigningKey().publicKeyPem,
        'private',
        /holds a public key or certificate, not a private key/,
      ],
      [
        'an encrypted private key',
        () =>
          generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
            .privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' })
            .toString(),
        'private',
        /is encrypted with a passphrase/,
      ],
      [
        'a private key where the public one is expected',
        () => generateSigningKey().privateKeyPem,
        'public',
        /holds a private key; expected an ECDSA P-256 public key/,
      ],
      [
        'an Ed25519 public key',
        () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        'public',
        /is an ED25519 key; expected an ECDSA P-256 public key/,
      ],
      ['truncated PEM', () => generateSigningKey().privateKeyPem.slice(0, 80) + '\n-----END PRIVATE KEY-----\n', 'private', /is not a readable private key/],
    ];
    for (const [what, make, kind, message] of cases) {
      it(what, async () => {
        const path = join(dir, 'key.pem');
        await writeFile(path, make());
        const err = await agoraError(() => (kind === 'private' ? loadPrivateKey(path) : loadPublicKey(path)));
        expect(err.code).toBe('key-invalid');
        expect(err.message.startsWith(`${path}: `)).toBe(true);
        expect(err.message).toMatch(message);
      });
    }

    it('a missing file', async () => {
      const err = await agoraError(() => loadPrivateKey(join(dir, 'nope.pem')));
      expect(err.code).toBe('key-unreadable');
      expect(err.message).toContain(join(dir, 'nope.pem'));
      expect(err.message).toContain('ENOENT');
    });
  });

  it('accepts a SEC1 "EC PRIVATE KEY" and normalises it to PKCS#8', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const sec1 = privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    const loaded = await loadPrivateKey(sec1);
    expect(loaded.source).toBe('inline PEM');
    expect(loaded.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });
});

describe('resolveSigningKey', () => {
  it('prefers the flag, then AGORA_SIGNING_KEY (path or PEM), then ./agora-signing.key.pem', async () => {
    const flagKey = generateSigningKey();
    const envKey = generateSigningKey();
    const written = await writeKeyPair(dir);
    await writeFile(join(dir, 'flag.pem'), flagKey.privateKeyPem);
    await writeFile(join(dir, 'env.pem'), envKey.privateKeyPem);

    const byFlag = await resolveSigningKey({ keyFlag: 'flag.pem', env: { AGORA_SIGNING_KEY: 'env.pem' }, cwd: dir });
    expect(byFlag).toMatchObject({ from: 'flag', source: join(dir, 'flag.pem'), keyId: keyIdOf(flagKey.publicKeyPem) });

    const byEnvPath = await resolveSigningKey({ env: { AGORA_SIGNING_KEY: 'env.pem' }, cwd: dir });
    expect(byEnvPath).toMatchObject({ from: 'env', source: join(dir, 'env.pem'), keyId: keyIdOf(envKey.publicKeyPem) });

    const byEnvPem = await resolveSigningKey({ env: { AGORA_SIGNING_KEY: envKey.privateKeyPem }, cwd: dir });
    expect(byEnvPem).toMatchObject({ from: 'env', source: 'AGORA_SIGNING_KEY', keyId: keyIdOf(envKey.publicKeyPem) });

    const byDefault = await resolveSigningKey({ env: { AGORA_SIGNING_KEY: '  ' }, cwd: dir });
    expect(byDefault).toMatchObject({ from: 'default', source: written.privateKeyPath, keyId: written.keyId });
  });

  it('explains all three ways when there is no key at all', async () => {
    const err = await agoraError(() => resolveSigningKey({ env: {}, cwd: dir }));
    expect(err.code).toBe('signing-key-missing');
    expect(err.message).toContain(join(dir, PRIVATE_KEY_FILE));
    expect(err.hint).toMatch(/--key <file>.*AGORA_SIGNING_KEY/);
  });

  it('a malformed AGORA_SIGNING_KEY PEM is reported as coming from the variable', async () => {
    const err = await agoraError(() => resolveSigningKey({ env: { AGORA_SIGNING_KEY: generateSigningKey().publicKeyPem }, cwd: dir }));
    expect(err.message.startsWith('AGORA_SIGNING_KEY: holds a public key')).toBe(true);
  });
});
