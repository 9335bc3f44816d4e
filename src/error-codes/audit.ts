import { USAGE, USER, type ErrorCodeInfo } from './info.js';

/** Audit, signing and verification. */
export const AUDIT_ERRORS = {
  // Audit
  'audit-failed': {
    area: 'audit',
    exitCode: USER,
    meaning: "The run's audit is not intact.",
    fix: 'Read report.failures in the bundle: each names what broke.',
  },
  'retry-options': {
    area: 'cli',
    exitCode: USAGE,
    meaning: '`agora orch retry` needs either one item id or `--failed`, not both and not neither.',
    fix: 'Name the item to retry, or pass --failed to retry every failed item.',
  },
  'audit-options': {
    area: 'cli',
    exitCode: USAGE,
    meaning: '`agora orch audit` was given options that do not fit together.',
    fix: 'Fix the option the message names.',
  },
  'anchor-root-mismatch': {
    area: 'audit',
    exitCode: USER,
    meaning: "The root to anchor differs from the root of the run's log in the repository.",
    fix: 'Investigate: the log or the bundle changed.',
  },
  'anchor-conflict': {
    area: 'audit',
    exitCode: USER,
    meaning: "A run's anchor already holds another root; anchors are never rewritten.",
    fix: 'Investigate the repository: the log or the anchor was tampered with.',
  },
  'bundle-invalid': {
    area: 'audit',
    exitCode: USER,
    meaning: 'The file is not a readable Agora audit bundle.',
    fix: 'Pass the file `agora orch audit <run> --out FILE` wrote.',
  },
  'bundle-unreadable': { area: 'audit', exitCode: USER, meaning: 'The audit bundle file cannot be read.', fix: 'Check the path.' },
  'bundle-duplicate-key': {
    area: 'audit',
    exitCode: USER,
    meaning: 'The bundle repeats a key in one object: it was edited, since Agora never writes one.',
    fix: 'Use the bundle as Agora wrote it.',
  },
  'bundle-version': { area: 'audit', exitCode: USER, meaning: 'The bundle uses a newer format than this Agora understands.', fix: 'Upgrade Agora.' },
  'verify-options': {
    area: 'cli',
    exitCode: USAGE,
    meaning: '`agora verify` was given pins that do not fit together or pin nothing.',
    fix: 'Pass a complete signer pin (--key, or identity and issuer with --trusted-root).',
  },
  'verify-failed': { area: 'audit', exitCode: USER, meaning: 'Verification of a bundle failed; each FAIL line names what broke.', fix: 'Read the FAIL lines.' },
  'sigstore-invalid': {
    area: 'audit',
    exitCode: USER,
    meaning: 'The Sigstore bundle file is not JSON, or repeats a key in an object.',
    fix: 'Pass the .sigstore.json written beside the audit bundle.',
  },
  'sigstore-unreadable': { area: 'audit', exitCode: USER, meaning: 'The Sigstore bundle file cannot be read.', fix: 'Check the path, or pass --sigstore.' },
  'trust-root-invalid': {
    area: 'audit',
    exitCode: USER,
    meaning: 'The trusted root file is not a Sigstore trusted_root.json.',
    fix: 'Pass the trusted_root.json your Sigstore instance publishes.',
  },
  'trust-root-unreadable': { area: 'audit', exitCode: USER, meaning: 'The trusted root file cannot be read.', fix: 'Check the path.' },
  'sign-failed': {
    area: 'audit',
    exitCode: USER,
    meaning: 'Signing the audit statement failed.',
    fix: 'Check that the signing services named are reachable, and the identity token.',
  },
  'identity-token-missing': {
    area: 'audit',
    exitCode: USER,
    meaning: 'Keyless signing needs an OIDC identity token and none was given.',
    fix: 'Pass --identity-token or set SIGSTORE_ID_TOKEN.',
  },
  'oidc-token-failed': {
    area: 'audit',
    exitCode: USER,
    meaning: 'The GitHub Actions OIDC token request failed.',
    fix: 'Grant `id-token: write` to the job, and check the endpoint answered.',
  },
  'signing-key-missing': {
    area: 'audit',
    exitCode: USER,
    meaning: 'No signing key is configured.',
    fix: 'Pass --key, set AGORA_SIGNING_KEY, or create a pair with `agora keys generate`.',
  },
  'key-unreadable': { area: 'audit', exitCode: USER, meaning: 'A key file cannot be read.', fix: 'Check the path.' },
  'key-invalid': { area: 'audit', exitCode: USER, meaning: 'A key is not an ECDSA P-256 key in PEM.', fix: 'Pass a key `agora keys generate` wrote.' },
  'key-exists': {
    area: 'audit',
    exitCode: USER,
    meaning: 'Writing a key pair would overwrite an existing key.',
    fix: 'Move the old key away first, or write to another directory.',
  },
  'audit-out': {
    area: 'cli',
    exitCode: USER,
    meaning: 'The audit bundle cannot be written where `--out` says (a directory, a device or pipe, or a place that cannot be written).',
    fix: 'Pass a file path you may write to; missing directories are created.',
  },
  'report-out': {
    area: 'cli',
    exitCode: USER,
    meaning: 'The report cannot be written where `--out` says (a directory, a device or pipe, or a place that cannot be written).',
    fix: 'Pass a file path you may write to; missing directories are created.',
  },
  'bundle-dir': {
    area: 'cli',
    exitCode: USER,
    meaning: 'The `--bundle-dir` of `agora orch gc` cannot be used: it is not a directory, lies under a file, or cannot be created.',
    fix: 'Pass a directory, or a path where one can be created.',
  },
  'key-dir': { area: 'cli', exitCode: USER, meaning: 'The directory for a new key pair cannot be used.', fix: 'Pass a directory you may write to.' },
  'image-context': {
    area: 'cli',
    exitCode: USER,
    meaning: '`npm run image:context` (building the worker image context) was given a bad argument, or a step failed.',
    fix: 'Fix the argument, or act on the failed step it names.',
  },
} as const satisfies Readonly<Record<string, ErrorCodeInfo>>;
