import { AgoraError, errorMessage } from '../errors.js';
import { loadPublicKey } from '../audit/keys.js';
import { trustMaterialFromRoot } from '../audit/trust.js';
import type { VerifyOptions } from '../audit/verify/options.js';
import { runGit } from '../git/git-cli.js';
import type { Oid } from '../git/types.js';
import type { VerifyInputs } from './inputs.js';

/**
 * The signer the bundle must be signed by, from the inputs. A key or trusted root given as a path is read
 * from the pull request's BASE commit: the pull request's own changes cannot swap the key its bundle is
 * checked against.
 */
export type SignerTrust = Pick<VerifyOptions, 'publicKeyPem' | 'certificateIdentity' | 'certificateIssuer' | 'trustedRoot'>;

export async function signerTrust(i: VerifyInputs, gitDir: string, base: Oid): Promise<SignerTrust> {
  const trust: SignerTrust = {};
  if (i.publicKey !== undefined) {
    const text = i.publicKey.includes('-----BEGIN') ? i.publicKey : await fileAtBase(gitDir, base, i.publicKey, 'public-key');
    trust.publicKeyPem = (await loadPublicKey(text, { sourceName: 'input `public-key`' })).publicKeyPem;
  }
  if (i.trustedRoot !== undefined) {
    const text = i.trustedRoot.trim().startsWith('{') ? i.trustedRoot : await fileAtBase(gitDir, base, i.trustedRoot, 'trusted-root');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new AgoraError(
        'action-input',
        `input \`trusted-root\` is not JSON (${errorMessage(e)})`,
        'pass the trusted_root.json of your Sigstore instance, as JSON text or a path in the repository',
      );
    }
    trustMaterialFromRoot(json, 'input `trusted-root`');
    trust.trustedRoot = json;
  }
  if (i.certificateIdentity !== undefined && i.certificateIssuer !== undefined) {
    trust.certificateIdentity = i.certificateIdentity;
    trust.certificateIssuer = i.certificateIssuer;
  }
  return trust;
}

async function fileAtBase(gitDir: string, base: Oid, path: string, input: string): Promise<string> {
  const clean = path.replace(/^\.\//, '');
  if (clean === '' || clean.startsWith('/') || clean.split('/').includes('..')) {
    throw new AgoraError(
      'action-input',
      `input \`${input}\` is ${JSON.stringify(path)}: neither the value itself nor a path inside the repository`,
      'pass the value, or a relative path like .github/agora-signing.pub.pem',
    );
  }
  try {
    return await runGit(['show', `${base}:${clean}`], { gitDir });
  } catch {
    throw new AgoraError(
      'action-input',
      `input \`${input}\`: ${clean} does not exist at the pull request's base commit ${base.slice(0, 12)}`,
      `commit ${clean} to the base branch first (it is never read from the pull request's own changes), or pass the value itself`,
    );
  }
}
