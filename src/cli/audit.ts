import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { auditOutFor, checkAuditOut, sigstorePathFor, writeAuditOut } from './audit-out.js';
import { runIdArgument } from './run-id-argument.js';
import { auditStatement, isTerminalRun, itemEvidence, type AuditBundle, type AuditReport } from '../audit/bundle.js';
import { buildAuditBundle } from '../audit/build-bundle.js';
import { parseAuditBundle } from '../audit/verify/parse.js';
import { loadPublicKey, resolveSigningKey, writeKeyPair } from '../audit/keys.js';
import { signKeyless, signWithKey, type SignedAudit } from '../audit/signers.js';
import { trustMaterialFromRoot } from '../audit/trust.js';
import { replaceRefsNote } from '../audit/replace-refs.js';
import { REPOSITORY_FULL_NAME } from '../audit/statement.js';
import { FULL_COMMIT_ID, type VerifyPins } from '../audit/verify/pins.js';
import { signaturePin, type VerifyOptions } from '../audit/verify/options.js';
import { verifyBundle } from '../audit/verify/pipeline.js';
import { AgoraError, type ErrorCode, errorMessage } from '../errors.js';
import { DuplicateKeyError, findDuplicateKey } from '../json/duplicate-keys.js';
import { describeDirectoryProblem, makeDirectory } from '../make-directory.js';
import { readRun } from '../runs/state-store.js';
import { openContext, type GlobalOptions } from './context.js';
import { runNotFound } from './missing-run.js';
import { progressLine } from './progress-line.js';
import { stdio, type Output } from './output.js';

/**
 * The audit verbs: `agora orch audit <run>` (bundle, anchor, optional signature), `agora verify <bundle>`
 * (offline verification with explicit trust) and `agora keys generate`. Thin: they wire src/audit together.
 */

/** Public-good Sigstore, used by `--keyless` unless `--fulcio-url` / `--rekor-url` (or the env) say otherwise. */
const PUBLIC_FULCIO = 'https://fulcio.sigstore.dev';
const PUBLIC_REKOR = 'https://rekor.sigstore.dev';

export interface AuditVerbOptions extends GlobalOptions {
  out?: string;
  sign?: boolean;
  key?: string;
  keyless?: boolean;
  identityToken?: string;
  fulcioUrl?: string;
  rekorUrl?: string;
  tsaUrl?: string;
  /** Rekor entry type for the DSSE envelope: `dsse` (default) or `intoto` (e.g. @sigstore/mock's log). */
  rekorEntryType?: string;
  trustedRoot?: string;
  item?: string;
}

export { sigstorePathFor } from './audit-out.js';

/** `agora orch audit <run>`: returns the exit code (0 only when the audit is intact). */
export async function auditVerb(runId: string, o: AuditVerbOptions, io: Output, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // Bad usage first: it is refused before anything is read.
  const wantsSign = Boolean(o.sign || o.keyless);
  if (wantsSign && o.item)
    throw new AgoraError(
      'audit-options',
      '--item and --sign do not go together: item evidence is checked against the signed root of the whole bundle',
      'audit with --sign first, then ask for --item',
    );
  const rekorEntryType = o.rekorEntryType;
  if (rekorEntryType !== undefined && rekorEntryType !== 'dsse' && rekorEntryType !== 'intoto') {
    throw new AgoraError('audit-options', `--rekor-entry-type ${JSON.stringify(rekorEntryType)} is not an entry type`, 'pass dsse (the default) or intoto');
  }
  const ctx = await openContext(o);
  const stored = await readRun(ctx.store, ctx.refs, runId);
  if (!stored) throw await runNotFound(ctx, runId);
  const trustedRoot = o.trustedRoot ? await readTrustedRoot(o.trustedRoot) : undefined;
  const entryType: { rekorEntryType?: 'dsse' | 'intoto' } = rekorEntryType ? { rekorEntryType } : {};
  // Resolve the key before anything is written, so a bad key leaves nothing behind.
  const signingKey = wantsSign && !o.keyless ? await resolveSigningKey({ ...(o.key ? { keyFlag: o.key } : {}), env, cwd: process.cwd() }) : undefined;
  const identityToken = o.keyless ? (o.identityToken ?? env.SIGSTORE_ID_TOKEN) : undefined;
  if (o.keyless && !identityToken) {
    throw new AgoraError(
      'identity-token-missing',
      '--keyless needs an OIDC identity token: none given',
      'pass --identity-token <jwt> or set SIGSTORE_ID_TOKEN (in GitHub Actions: the id-token with audience sigstore)',
    );
  }
  // The files too: a refused --out must not leave a signature, nor an anchor, behind.
  const out = o.item ? undefined : auditOutFor(runId, o.out, wantsSign);
  if (out) await checkAuditOut(out);

  const progress = progressLine();
  const bundle = await buildAuditBundle(ctx.store, ctx.refs, runId, { anchor: true, now: Date.now(), progress }).finally(() => progress.clear());
  const replaced = await replaceRefsNote(ctx.store);
  if (replaced) io.err(replaced);
  if (o.item) {
    io.out(JSON.stringify(itemEvidence(bundle, o.item), null, 2));
    return bundle.report.intact ? 0 : failed(runId, bundle.report);
  }
  let signed: SignedAudit | undefined;
  if (wantsSign) {
    if (!isTerminalRun(bundle)) {
      throw new AgoraError(
        'run-not-terminal',
        `run ${runId} is ${bundle.state}: refusing to sign the audit of an unfinished run`,
        'wait until it ends (agora orch watch), then audit with --sign',
      );
    }
    const statement = auditStatement(bundle);
    if (signingKey) {
      signed = await signWithKey(statement, {
        privateKeyPem: signingKey.privateKeyPem,
        ...(o.rekorUrl ? { rekorUrl: o.rekorUrl } : {}),
        ...(o.tsaUrl ? { tsaUrl: o.tsaUrl } : {}),
        ...entryType,
      });
    } else {
      signed = await signKeyless(statement, {
        identityToken: identityToken as string,
        fulcioUrl: o.fulcioUrl ?? env.SIGSTORE_FULCIO_URL ?? PUBLIC_FULCIO,
        rekorUrl: o.rekorUrl ?? env.SIGSTORE_REKOR_URL ?? PUBLIC_REKOR,
        ...(o.tsaUrl ? { tsaUrl: o.tsaUrl } : {}),
        ...entryType,
      });
    }
    bundle.signature = signed.record;
    const check: VerifyOptions = { store: ctx.store, refs: ctx.refs, sigstoreBundle: signed.bundle, requireSignature: false };
    if (signingKey) check.publicKeyPem = signingKey.publicKeyPem;
    else if (signed.record.identity && signed.record.issuer && trustedRoot !== undefined) {
      check.certificateIdentity = signed.record.identity;
      check.certificateIssuer = signed.record.issuer;
    } else delete check.sigstoreBundle; // keyless without a trusted root: the signature is not checked here
    if (trustedRoot !== undefined) check.trustedRoot = trustedRoot;
    bundle.report = await verifyBundle(bundle, check);
  }

  const text = `${JSON.stringify(bundle, null, 2)}\n`;
  if (out) await writeAuditOut(out, text, signed ? `${JSON.stringify(signed.bundle, null, 2)}\n` : undefined, io);
  else io.out(text.trimEnd());
  io.err(summaryLine(bundle, bundle.report));
  return bundle.report.intact ? 0 : failed(runId, bundle.report);
}

function failed(runId: string, report: AuditReport): never {
  const codes = [...new Set(report.failures.filter((f) => f.code !== 'not-terminal').map((f) => f.code))];
  throw new AgoraError(
    'audit-failed',
    `run ${runId}: the audit is not intact (${codes.join(', ')})`,
    'read report.failures in the bundle: each names what broke',
  );
}

export interface VerifyVerbOptions {
  sigstore?: string;
  key?: string;
  certificateIdentity?: string;
  certificateOidcIssuer?: string;
  trustedRoot?: string;
  repo?: string;
  config?: string;
  json?: boolean;
  /** Pins: the run the bundle must be about, the commit it must have started on, the GitHub repository. */
  run?: string;
  planCommit?: string;
  repository?: string;
}

/** `agora verify <bundle.json>`: returns 0 only when everything checks. */
export async function verifyVerb(file: string, o: VerifyVerbOptions, io: Output): Promise<number> {
  // Bad usage first: it is refused before any file is read.
  const keyless = keylessPin(o);
  const pins = verifyPins(o);
  const path = resolve(process.cwd(), file);
  const bundle = parseAuditBundle(await readText(path, 'audit bundle', 'bundle-unreadable'), file);
  const opts: VerifyOptions = { ...keyless };
  if (o.repo) {
    const ctx = await openContext({ repo: o.repo, ...(o.config ? { config: o.config } : {}) });
    opts.store = ctx.store;
    opts.refs = ctx.refs;
  }
  if (pins) opts.expect = pins;
  if (o.key) opts.publicKeyPem = (await loadPublicKey(o.key, { cwd: process.cwd() })).publicKeyPem;
  if (o.trustedRoot) opts.trustedRoot = await readTrustedRoot(o.trustedRoot);
  const sigPath = o.sigstore ? resolve(process.cwd(), o.sigstore) : sigstorePathFor(path);
  const sigText = await readOptionalText(sigPath, 'Sigstore bundle', 'sigstore-unreadable', !o.sigstore);
  if (sigText !== null) opts.sigstoreBundle = parseSigstoreText(sigText, o.sigstore ?? sigPath);
  const progress = progressLine();
  if (opts.store) opts.progress = progress;
  const report = await verifyBundle(bundle, opts).finally(() => progress.clear());
  const checked = { repo: Boolean(opts.store), signature: sigText !== null, pin: signaturePin(opts), ...(pins ? { pins } : {}) };
  if (o.json) io.out(JSON.stringify(jsonReport(bundle, report, checked), null, 2));
  else io.out(humanReport(bundle, report, checked));
  const replaced = opts.store ? await replaceRefsNote(opts.store) : null;
  if (replaced) io.err(replaced);
  return report.intact ? 0 : 1;
}

/** `--certificate-identity` with `--certificate-oidc-issuer` (and `--trusted-root`, without `--key`), or neither. */
function keylessPin(o: VerifyVerbOptions): Pick<VerifyOptions, 'certificateIdentity' | 'certificateIssuer'> {
  if (o.certificateIdentity === undefined && o.certificateOidcIssuer === undefined) return {};
  if (!o.certificateIdentity || !o.certificateOidcIssuer) {
    throw new AgoraError(
      'verify-options',
      'keyless verification needs both --certificate-identity and --certificate-oidc-issuer',
      'pass the exact workflow identity and issuer the bundle must have been signed by',
    );
  }
  if (o.key)
    throw new AgoraError(
      'verify-options',
      '--key and --certificate-identity do not go together',
      'a bundle is either key-signed (--key) or keyless (--certificate-identity/--certificate-oidc-issuer)',
    );
  if (!o.trustedRoot)
    throw new AgoraError(
      'verify-options',
      'keyless verification needs --trusted-root <trusted_root.json>',
      'agora never fetches trust material; pass the trusted root of your Sigstore instance',
    );
  return { certificateIdentity: o.certificateIdentity, certificateIssuer: o.certificateOidcIssuer };
}

/** `--run`, `--plan-commit` and `--repository`, checked for form; undefined when none is given. */
function verifyPins(o: VerifyVerbOptions): VerifyPins | undefined {
  if (o.run === undefined && o.planCommit === undefined && o.repository === undefined) return undefined;
  const pins: VerifyPins = {};
  if (o.run !== undefined) {
    if (o.run === '') throw new AgoraError('verify-options', '--run is empty', 'pass the run id the bundle must be about, e.g. --run nightly-3-1');
    pins.runId = o.run;
  }
  if (o.planCommit !== undefined) {
    if (!FULL_COMMIT_ID.test(o.planCommit)) {
      throw new AgoraError(
        'verify-options',
        `--plan-commit ${JSON.stringify(o.planCommit)} is not a full commit id`,
        'pass all 40 hex digits in lower case, as git rev-parse <commit> prints them: a prefix would pin less than it says, and the audit compares commit ids as text',
      );
    }
    pins.planCommit = o.planCommit;
  }
  if (o.repository !== undefined) {
    if (!REPOSITORY_FULL_NAME.test(o.repository)) {
      throw new AgoraError(
        'verify-options',
        `--repository ${JSON.stringify(o.repository)} is not a GitHub repository name`,
        'pass OWNER/NAME, e.g. --repository acme/widgets',
      );
    }
    pins.repository = o.repository;
  }
  return pins;
}

/** The Sigstore bundle file as JSON: not JSON, or a key repeated in one object → AgoraError `sigstore-invalid`. */
function parseSigstoreText(text: string, source: string): object {
  const hint = 'pass the .sigstore.json that `agora orch audit --sign` wrote next to the bundle';
  let json: object;
  try {
    json = JSON.parse(text) as object;
  } catch (error) {
    throw new AgoraError('sigstore-invalid', `${source}: not JSON (${errorMessage(error)})`, hint);
  }
  const dup = findDuplicateKey(text);
  if (dup) throw new DuplicateKeyError('sigstore-invalid', source, dup, `a Sigstore bundle never repeats a key: this one was edited; ${hint}`);
  return json;
}

/** `agora keys generate [--out DIR]`. */
export async function keysGenerateVerb(o: { out?: string }, io: Output): Promise<number> {
  const dir = resolve(process.cwd(), o.out ?? '.');
  await makeKeyDir(dir);
  const pair = await writeKeyPair(dir);
  io.out(JSON.stringify({ privateKey: pair.privateKeyPath, publicKey: pair.publicKeyPath, keyId: pair.keyId }));
  io.err(`keep ${pair.privateKeyPath} secret (not in the repository); publish ${pair.publicKeyPath}`);
  return 0;
}

/** Creates `--out DIR` (private to its owner when new) or says why it cannot be used. */
async function makeKeyDir(dir: string): Promise<void> {
  await makeDirectory(
    dir,
    (p) =>
      new AgoraError(
        'key-dir',
        p.kind === 'not-a-directory' ? `--out ${dir} is not a directory (${p.at} ${p.why})` : `--out ${dir} ${describeDirectoryProblem(dir, p)}`,
        'pass a directory, or a path where one can be created',
        { cause: p.cause },
      ),
    0o700,
  );
}

/** What `agora verify` checked the bundle with. */
interface Checked {
  repo: boolean;
  signature: boolean;
  pin?: 'key' | 'identity' | null;
  pins?: VerifyPins;
}

/**
 * Whether the bundle's `repository` is bound: only the signed statement binds it, by a pinned signer's
 * verified signature; a clone does not know its GitHub name (docs/audit.md §8.7).
 */
function repositorySigned(report: AuditReport, checked: Checked): boolean {
  return checked.signature && Boolean(checked.pin) && !report.failures.some((f) => f.code === 'signature');
}

/**
 * `--json`: the report, and, when the bundle names a repository, that name with whether a verified
 * signature binds it (`checked`), as the human report says beside it.
 */
export function jsonReport(
  bundle: AuditBundle,
  report: AuditReport,
  checked: Checked,
): AuditReport & { repository?: { fullName: string; id: number; checked: boolean } } {
  if (!bundle.repository) return report;
  return { ...report, repository: { fullName: bundle.repository.fullName, id: bundle.repository.id, checked: repositorySigned(report, checked) } };
}

/** A short report for people: the verdict, what backs it, then each failure. */
export function humanReport(bundle: AuditBundle, report: AuditReport, checked: Checked): string {
  const lines = [summaryLine(bundle, report)];
  lines.push(`  entries ${bundle.entries.length}, root ${bundle.root}`);
  if (bundle.repository) {
    const how = repositorySigned(report, checked) ? 'signed' : 'as the bundle says: unchecked (only a verified signature binds it)';
    lines.push(`  made in: ${bundle.repository.fullName} (GitHub repository id ${bundle.repository.id}), ${how}`);
  }
  if (checked.pins) {
    const p = checked.pins;
    const said = [
      p.runId !== undefined ? `run ${p.runId}` : '',
      p.planCommit !== undefined ? `plan commit ${p.planCommit}` : '',
      p.repository !== undefined ? `repository ${p.repository}` : '',
    ];
    lines.push(`  pinned: ${said.filter(Boolean).join(', ')}`);
  }
  lines.push(
    `  repository: ${checked.repo ? 'checked (patches, scopes, integration, run ref, plan, anchor)' : 'not checked (pass --repo to check patches and the anchor)'}`,
  );
  lines.push(`  signature: ${signatureLine(bundle, checked)}`);
  for (const f of report.failures) {
    const where = [f.item ? `item ${f.item}` : '', f.entry !== undefined ? `entry ${f.entry}` : ''].filter(Boolean).join(', ');
    lines.push(`  ${f.code === 'not-terminal' ? 'note' : 'FAIL'} ${f.code}${where ? ` (${where})` : ''}: ${f.message}`);
  }
  return lines.join('\n');
}

function signatureLine(bundle: AuditBundle, checked: { signature: boolean; pin?: 'key' | 'identity' | null }): string {
  if (checked.signature) return 'checked';
  if (checked.pin) return `required (pinned to ${checked.pin === 'key' ? 'a key' : 'an identity'}), none given`;
  return bundle.signature ? 'recorded, no Sigstore bundle given' : 'none';
}

function summaryLine(bundle: AuditBundle, report: AuditReport): string {
  const verdict = report.intact
    ? `intact — ${report.claim} (${report.guarantee})`
    : `NOT intact — ${report.failures.filter((f) => f.code !== 'not-terminal').length} failures`;
  return `run ${bundle.runId} (${bundle.state}${report.terminal ? '' : ', not terminal'}): ${verdict}`;
}

async function readText(path: string, what: string, code: ErrorCode): Promise<string> {
  const text = await readOptionalText(path, what, code, false);
  return text as string;
}

/** The file's text; null when `optional` and it does not exist; anything else unreadable → AgoraError `code`. */
async function readOptionalText(path: string, what: string, code: ErrorCode, optional: boolean): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code;
    if (optional && errno === 'ENOENT') return null;
    throw new AgoraError(code, `${path}: cannot read the ${what} (${errno === 'ENOENT' ? 'no such file' : errorMessage(error)})`, 'check the path');
  }
}

async function readTrustedRoot(file: string): Promise<unknown> {
  const path = resolve(process.cwd(), file);
  const text = await readText(path, 'trusted root', 'trust-root-unreadable');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AgoraError('trust-root-invalid', `${path}: not JSON (${errorMessage(error)})`, 'pass a trusted_root.json');
  }
  trustMaterialFromRoot(json, path); // throws AgoraError trust-root-invalid naming the file
  return json;
}

/**
 * Adds `orch audit`, `verify` and `keys generate` to the program. Verbs that find a problem print their
 * report and then throw an AgoraError, so the program exits non-zero with a one-line reason.
 */
export function registerAuditCommands(program: Command, orch: Command): void {
  orch
    .command('audit')
    .argument('<run>', 'the run id', runIdArgument)
    .description("the run's audit bundle (JSON); anchors a finished run; exit 0 only if intact")
    .option('--repo <dir>', 'the git repository (default: the current directory)')
    .option('--config <file>', 'the config module (default: ./agora.config.mjs if present)')
    .option('--out <file>', 'write the bundle here (atomically) instead of printing it')
    .option('--sign', "sign the bundle's in-toto statement (local key unless --keyless); writes <out>.sigstore.json")
    .option('--key <file>', 'the ECDSA P-256 private key for --sign (default: $AGORA_SIGNING_KEY, ./agora-signing.key.pem)')
    .option('--keyless', 'sign with a Fulcio certificate for an OIDC identity, logged in Rekor')
    .option('--identity-token <jwt>', 'the OIDC token for --keyless (default: $SIGSTORE_ID_TOKEN)')
    .option('--fulcio-url <url>', 'Fulcio for --keyless (default: $SIGSTORE_FULCIO_URL or public Sigstore)')
    .option('--rekor-url <url>', 'Rekor (default for --keyless: $SIGSTORE_REKOR_URL or public Sigstore)')
    .option('--tsa-url <url>', 'a timestamp authority to witness the signature')
    .option('--rekor-entry-type <type>', 'how Rekor records the signature: dsse (default) or intoto')
    .option('--trusted-root <file>', "trusted_root.json to check the new signature's witnesses against")
    .option('--item <id>', "print only this item's entries, each with its inclusion proof to the root")
    .action(async (run: string, o: AuditVerbOptions) => {
      await auditVerb(run, o, stdio);
    });

  program
    .command('verify <bundle>')
    .description('verify an audit bundle offline with explicit trust; exit 0 only when everything checks')
    .option('--sigstore <file>', 'the Sigstore bundle (default: <bundle>.sigstore.json when present)')
    .option('--key <pub.pem>', "the signer's public key (key-signed bundles)")
    .option('--certificate-identity <san>', 'the exact signer identity (keyless)')
    .option('--certificate-oidc-issuer <url>', 'the exact OIDC issuer (keyless)')
    .option('--trusted-root <file>', 'trusted_root.json: Fulcio, CT logs, Rekor, TSA')
    .option('--repo <dir>', 'also check the run against this repository (patches, scopes, integration, anchor)')
    .option('--config <file>', 'the config module of that repository (for its ref namespace)')
    .option('--run <id>', 'the run the bundle must be the audit of')
    .option('--plan-commit <oid>', 'the full id of the commit the run must have started on (on GitHub: the plan commit)')
    .option('--repository <owner/name>', 'the GitHub repository the run must have been made in (needs --key or a certificate identity)')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, o: VerifyVerbOptions) => {
      const code = await verifyVerb(file, o, stdio);
      if (code !== 0) throw new AgoraError('verify-failed', `${file}: verification failed`, 'each FAIL line above names what broke', { exitCode: code });
    });

  const keys = program.command('keys').description('signing keys for audit bundles');
  keys
    .command('generate')
    .description('write a new ECDSA P-256 key pair (agora-signing.key.pem, agora-signing.pub.pem)')
    .option('--out <dir>', 'the directory (default: the current one)')
    .action(async (o: { out?: string }) => {
      await keysGenerateVerb(o, stdio);
    });
}
