import { sign as cryptoSign } from 'node:crypto';
import { bundleToJSON, type SerializedBundle } from '@sigstore/bundle';
import { DSSEBundleBuilder } from '@sigstore/sign';
import { loadPrivateKey } from '../../src/audit/keys.js';
import { IN_TOTO_PAYLOAD_TYPE } from '../../src/audit/statement.js';

/**
 * Test helper: a genuine key-signed Sigstore bundle (DSSE, v0.3) over arbitrary payload bytes — what a signer
 * that does not canonicalise, or a hostile one, would produce. Built with @sigstore/sign and a real ECDSA
 * P-256 key, exactly as src/audit/signers.ts builds Agora's, but without going through buildStatement.
 */
export async function signBytes(payload: string | Buffer, privateKeyPem: string): Promise<SerializedBundle> {
  const key = await loadPrivateKey(privateKeyPem, { sourceName: 'test key' });
  const signer = {
    sign: async (data: Buffer) => ({
      signature: cryptoSign('sha256', data, key.key),
      key: { $case: 'publicKey' as const, publicKey: key.publicKeyPem, hint: key.keyId },
    }),
  };
  const bundle = await new DSSEBundleBuilder({ signer, witnesses: [] }).create({ data: Buffer.from(payload), type: IN_TOTO_PAYLOAD_TYPE });
  return bundleToJSON(bundle);
}
