import * as core from '@actions/core';
import { AgoraError } from '../errors.js';

/**
 * The Action's inputs, read through the toolkit (`INPUT_*` as the runner sets them from `with:`) and
 * checked for form. Every problem is an AgoraError naming the input and the fix.
 */

export const MODES = ['run', 'worker', 'verify'] as const;
export type Mode = (typeof MODES)[number];

export function readMode(): Mode {
  const raw = core.getInput('mode').trim();
  if (raw === '') throw new AgoraError('action-input', 'input `mode` is missing', `add \`with: { mode: verify }\` to the step (one of ${MODES.join(', ')})`);
  if (!(MODES as readonly string[]).includes(raw)) {
    throw new AgoraError('action-input', `input \`mode\` is ${JSON.stringify(raw)}, which is not a mode`, `use one of ${MODES.join(', ')}`);
  }
  return raw as Mode;
}

/** What `mode: verify` is given. Empty inputs are absent. */
export interface VerifyInputs {
  token: string;
  publicKey?: string;
  certificateIdentity?: string;
  certificateIssuer?: string;
  trustedRoot?: string;
  refNamespace: string;
  /** How long to wait for an anchored run's release to be published (seconds). */
  waitForReleaseSeconds: number;
}

const optional = (name: string): string | undefined => {
  const v = core.getInput(name);
  return v === '' ? undefined : v;
};

/** The job's token (input `token`, default the job's GITHUB_TOKEN), masked in the log. */
export function readToken(needs: string): string {
  const token = core.getInput('token');
  if (token === '')
    throw new AgoraError('action-input', 'input `token` is empty', `leave it out (it defaults to \${{ github.token }}) or pass a token that ${needs}`);
  core.setSecret(token);
  return token;
}

/** Input `ref-namespace`, checked for form. */
export function readRefNamespace(): string {
  const refNamespace = core.getInput('ref-namespace') || 'refs/agora/';
  if (!/^refs\/[A-Za-z0-9._/-]+\/?$/.test(refNamespace) || refNamespace.includes('..')) {
    throw new AgoraError(
      'action-input',
      `input \`ref-namespace\` is ${JSON.stringify(refNamespace)}, which is not a ref namespace`,
      'use the namespace your agora config names, e.g. refs/agora/',
    );
  }
  return refNamespace;
}

export function readVerifyInputs(): VerifyInputs {
  const token = readToken('can read the repository');
  const refNamespace = readRefNamespace();
  const waitText = core.getInput('wait-for-release').trim() || '600';
  if (!/^\d{1,5}$/.test(waitText)) {
    throw new AgoraError(
      'action-input',
      `input \`wait-for-release\` is ${JSON.stringify(waitText)}, which is not a number of seconds`,
      'give a whole number of seconds, e.g. 600 (0: do not wait)',
    );
  }
  const i: VerifyInputs = { token, refNamespace, waitForReleaseSeconds: Number(waitText) };
  const publicKey = optional('public-key');
  const certificateIdentity = optional('certificate-identity');
  const certificateIssuer = optional('certificate-oidc-issuer');
  const trustedRoot = optional('trusted-root');
  if (publicKey !== undefined) i.publicKey = publicKey;
  if (certificateIdentity !== undefined) i.certificateIdentity = certificateIdentity;
  if (certificateIssuer !== undefined) i.certificateIssuer = certificateIssuer;
  if (trustedRoot !== undefined) i.trustedRoot = trustedRoot;
  if ((i.certificateIdentity === undefined) !== (i.certificateIssuer === undefined)) {
    throw new AgoraError(
      'action-input',
      'keyless verification needs both inputs `certificate-identity` and `certificate-oidc-issuer`; only one is given',
      'pass the exact workflow identity and OIDC issuer the bundle must have been signed by',
    );
  }
  if (i.certificateIdentity !== undefined && i.publicKey !== undefined) {
    throw new AgoraError(
      'action-input',
      'inputs `public-key` and `certificate-identity` do not go together',
      'a bundle is either key-signed (public-key) or keyless (certificate-identity, certificate-oidc-issuer, trusted-root)',
    );
  }
  if (i.trustedRoot !== undefined && i.publicKey === undefined && i.certificateIdentity === undefined) {
    // A trusted root says whose certificates and logs to believe, not whose signature the bundle must carry.
    throw new AgoraError(
      'action-input',
      'input `trusted-root` is given without a signer to pin, so no signature would be checked',
      'add `certificate-identity` and `certificate-oidc-issuer` (keyless) or `public-key` (witnessed key signatures), or drop `trusted-root`',
    );
  }
  if (i.certificateIdentity !== undefined && i.trustedRoot === undefined) {
    throw new AgoraError(
      'action-input',
      'keyless verification needs input `trusted-root`',
      'pass the trusted_root.json of your Sigstore instance (JSON text, or a path in the repository at the base commit)',
    );
  }
  return i;
}
