import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditBundle, ItemEvidence } from '../../src/audit/bundle.js';
import { verifyItemEvidence } from '../../src/audit/verify/item-evidence.js';
import { auditVerb, keysGenerateVerb, registerAuditCommands, sigstorePathFor, verifyVerb } from '../../src/cli/audit.js';
import type { Output } from '../../src/cli/output.js';
import { agora, cleanupTempDirs, tempDir } from '../support/repo.js';
import { finishedRun, rechain, type FinishedRun } from '../audit/bundle-fixture.js';

/** The audit verbs, called in-process with captured output (the program wiring is added in program.ts). */

function capture(): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, tty: false, out: (t) => stdout.push(t), err: (t) => stderr.push(t) };
}

async function rejection(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected a rejection');
}

let run: FinishedRun;
let dir: string;
let keys: { privateKey: string; publicKey: string; keyId: string };

beforeAll(async () => {
  run = await finishedRun();
  dir = tempDir('agora-audit-cli-');
  const io = capture();
  expect(await keysGenerateVerb({ out: dir }, io)).toBe(0);
  keys = JSON.parse(io.stdout[0]!);
});
afterAll(cleanupTempDirs);

describe('agora orch audit', () => {
  it('prints the bundle of a finished run and anchors it', async () => {
    const io = capture();
    expect(await auditVerb(run.runId, { repo: run.repo }, io)).toBe(0);
    const bundle = JSON.parse(io.stdout.join('\n')) as AuditBundle;
    expect(bundle.report).toMatchObject({ intact: true, claim: 'tamper-detecting', guarantee: 'same-repository' });
    expect(io.stderr.join('\n')).toContain('run fanout-1-1 (done): intact — tamper-detecting (same-repository)');
  });

  it('--sign --out writes the bundle and its Sigstore bundle; verify checks both with the public key and the repo', async () => {
    const out = join(dir, 'run.audit.json');
    const io = capture();
    expect(await auditVerb(run.runId, { repo: run.repo, out, sign: true, key: keys.privateKey }, io)).toBe(0);
    expect(existsSync(out) && existsSync(sigstorePathFor(out))).toBe(true);
    const bundle = JSON.parse(readFileSync(out, 'utf8')) as AuditBundle;
    expect(bundle.signature).toMatchObject({ kind: 'key', keyId: keys.keyId });

    const ok = capture();
    expect(await verifyVerb(out, { key: keys.publicKey, repo: run.repo }, ok)).toBe(0);
    expect(ok.stdout[0]).toMatch(/^run fanout-1-1 \(done\): intact — tamper-detecting \(same-repository\)/);
    const json = capture();
    expect(await verifyVerb(out, { key: keys.publicKey, json: true }, json)).toBe(0);
    expect(JSON.parse(json.stdout[0]!)).toMatchObject({ intact: true, claim: 'tamper-detecting', guarantee: 'signed' });

    // The signature recorded but no key to check it with: not everything checks.
    const noKey = capture();
    expect(await verifyVerb(out, {}, noKey)).toBe(1);
    expect(noKey.stdout[0]).toMatch(/FAIL signature/);
    // A tampered copy fails, naming what broke.
    const tampered = join(dir, 'tampered.audit.json');
    bundle.entries[2]!.at += 1;
    writeFileSync(tampered, JSON.stringify(bundle));
    const bad = capture();
    expect(await verifyVerb(tampered, { key: keys.publicKey, sigstore: sigstorePathFor(out), repo: run.repo }, bad)).toBe(1);
    expect(bad.stdout[0]).toMatch(/NOT intact/);
    expect(bad.stdout[0]).toMatch(/FAIL chain \(entry 2\)/);
    expect(bad.stdout[0]).toMatch(/FAIL signature/);
  });

  it('a signature stripped from a bundle does not verify against a key: --key makes it mandatory', async () => {
    const signedPath = join(dir, 'run.audit.json');
    if (!existsSync(signedPath)) expect(await auditVerb(run.runId, { repo: run.repo, out: signedPath, sign: true, key: keys.privateKey }, capture())).toBe(0);
    const bundle = JSON.parse(readFileSync(signedPath, 'utf8')) as AuditBundle;
    // The genuine bundle with its signature record cleared and no .sigstore.json next to it.
    const stripped = join(dir, 'stripped.audit.json');
    writeFileSync(stripped, JSON.stringify({ ...bundle, signature: null }));
    expect(existsSync(sigstorePathFor(stripped))).toBe(false);
    for (const opts of [{ key: keys.publicKey }, { key: keys.publicKey, repo: run.repo }]) {
      const io = capture();
      expect(await verifyVerb(stripped, opts, io)).toBe(1);
      expect(io.stdout[0]).toMatch(/NOT intact/);
      expect(io.stdout[0]).toMatch(/FAIL signature: a signature is required: .*no Sigstore bundle was given.*--sigstore/);
      expect(io.stdout[0]).toMatch(/signature: required \(pinned to a key\), none given/);
    }
    // A forgery: entries rewritten, re-chained, a new root, the signature stripped.
    const forged = rechain({ ...bundle, signature: null });
    forged.entries[2]!.at += 1;
    rechain(forged);
    const forgedPath = join(dir, 'forged.audit.json');
    writeFileSync(forgedPath, JSON.stringify(forged));
    const io = capture();
    expect(await verifyVerb(forgedPath, { key: keys.publicKey }, io)).toBe(1);
    expect(io.stdout[0]).toMatch(/FAIL signature/);
    // Without a pin the bundle is checked as unsigned, and says so.
    const unpinned = capture();
    expect(await verifyVerb(stripped, {}, unpinned)).toBe(0);
    expect(unpinned.stdout[0]).toMatch(/intact — none \(none\)/);
    expect(unpinned.stdout[0]).toMatch(/signature: none/);
  });

  it('--run and --plan-commit pin what the bundle must be about: a genuine bundle of another run does not verify', async () => {
    const signedPath = join(dir, 'run.audit.json');
    if (!existsSync(signedPath)) expect(await auditVerb(run.runId, { repo: run.repo, out: signedPath, sign: true, key: keys.privateKey }, capture())).toBe(0);
    const bundle = JSON.parse(readFileSync(signedPath, 'utf8')) as AuditBundle;
    const ok = capture();
    expect(await verifyVerb(signedPath, { key: keys.publicKey, run: run.runId, planCommit: bundle.base, repo: run.repo }, ok)).toBe(0);
    expect(ok.stdout[0]).toContain(`pinned: run ${run.runId}, plan commit ${bundle.base}`);

    const otherRun = capture();
    expect(await verifyVerb(signedPath, { key: keys.publicKey, run: 'release-7-1' }, otherRun)).toBe(1);
    expect(otherRun.stdout[0]).toContain(`FAIL pin: the bundle is the audit of run ${run.runId}, but the verifier expects run release-7-1 (--run)`);
    const otherCommit = capture();
    expect(await verifyVerb(signedPath, { key: keys.publicKey, planCommit: 'a'.repeat(40) }, otherCommit)).toBe(1);
    expect(otherCommit.stdout[0]).toContain(
      `FAIL pin: the run started on commit ${bundle.base}, but the verifier expects plan commit ${'a'.repeat(40)} (--plan-commit)`,
    );
    // A pin is a full commit id: a prefix would pin less than it says.
    const e = await rejection(verifyVerb(signedPath, { key: keys.publicKey, planCommit: bundle.base.slice(0, 12) }, capture()));
    expect(e).toMatchObject({ code: 'verify-options', message: expect.stringMatching(/--plan-commit .* is not a full commit id/) });
    // ... as git prints it: 40 lower-case hex digits. Hex is compared as text, and the format has no SHA-256 form (docs/audit.md §1).
    for (const pin of [bundle.base.toUpperCase(), 'a'.repeat(64)]) {
      const refused = await rejection(verifyVerb(signedPath, { key: keys.publicKey, planCommit: pin }, capture()));
      expect(refused).toMatchObject({ code: 'verify-options', message: expect.stringMatching(/--plan-commit .* is not a full commit id/) });
    }
  });

  it('a pin nothing binds is refused: --run / --plan-commit need --key or --repo, --repository needs --key', async () => {
    const signedPath = join(dir, 'run.audit.json');
    if (!existsSync(signedPath)) expect(await auditVerb(run.runId, { repo: run.repo, out: signedPath, sign: true, key: keys.privateKey }, capture())).toBe(0);
    // An unsigned copy (no .sigstore.json beside it) whose run id a forger set to what the verifier expects.
    const bundle = JSON.parse(readFileSync(signedPath, 'utf8')) as AuditBundle;
    const forgedDir = tempDir('agora-unbound-');
    const forgedPath = join(forgedDir, 'forged.audit.json');
    writeFileSync(forgedPath, JSON.stringify({ ...bundle, runId: 'release-7-1', signature: null }));
    const runAlone = await rejection(verifyVerb(forgedPath, { run: 'release-7-1' }, capture()));
    expect(runAlone).toMatchObject({
      code: 'verify-options',
      message: expect.stringMatching(/^--run pins nothing on its own/),
      hint: expect.stringMatching(/--key PUB\.pem .*--repo DIR/),
    });
    const both = await rejection(verifyVerb(forgedPath, { run: 'release-7-1', planCommit: bundle.base }, capture()));
    expect(both).toMatchObject({ code: 'verify-options', message: expect.stringMatching(/^--run and --plan-commit pin nothing on its own/) });
    // With the repository the run id is checked against state.json: the forgery fails, it is not refused.
    const withRepo = capture();
    expect(await verifyVerb(forgedPath, { run: 'release-7-1', repo: run.repo }, withRepo)).toBe(1);
    expect(withRepo.stdout[0]).toMatch(/FAIL (chain|state)/);
    // --repository is bound only by a signature: --repo does not make it checkable.
    const repoPin = await rejection(verifyVerb(signedPath, { repository: 'octo/demo', repo: run.repo }, capture()));
    expect(repoPin).toMatchObject({
      code: 'verify-options',
      message: expect.stringMatching(/^--repository pins nothing on its own/),
      hint: expect.stringMatching(/--key PUB\.pem/),
    });
    const badName = await rejection(verifyVerb(signedPath, { key: keys.publicKey, repository: 'not a repo' }, capture()));
    expect(badName).toMatchObject({ code: 'verify-options', message: expect.stringMatching(/--repository "not a repo" is not a GitHub repository name/) });
    // A local run records no repository: pinned to one, it fails `pin`, saying why.
    const local = capture();
    expect(await verifyVerb(signedPath, { key: keys.publicKey, repository: 'octo/demo' }, local)).toBe(1);
    expect(local.stdout[0]).toContain(
      'FAIL pin: the bundle records no repository (it was made by a local run), but the verifier expects octo/demo (--repository)',
    );
  });

  it('the program refuses an unbound pin with a one-line typed error and a non-zero exit', async () => {
    const signedPath = join(dir, 'run.audit.json');
    if (!existsSync(signedPath)) expect(await auditVerb(run.runId, { repo: run.repo, out: signedPath, sign: true, key: keys.privateKey }, capture())).toBe(0);
    const r = await agora(dir, ['verify', signedPath, '--run', run.runId]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--run pins nothing on its own/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack
  });

  it('--sign with a refused --out leaves no signature behind: both paths are checked before anything is written', async () => {
    const outs = tempDir('agora-audit-refused-');
    mkdirSync(join(outs, 'a-dir.json'));
    execFileSync('mkfifo', [join(outs, 'a-pipe.json')]);
    mkdirSync(join(outs, 'sig-dir.sigstore.json'));
    const cases: Array<[string, RegExp]> = [
      ['a-dir.json', /a-dir\.json is a directory/],
      ['a-pipe.json', /a-pipe\.json is not a regular file/],
      ['sig-dir.json', /sig-dir\.sigstore\.json is a directory/],
    ];
    for (const [name, message] of cases) {
      const e = await rejection(auditVerb(run.runId, { repo: run.repo, out: join(outs, name), sign: true, key: keys.privateKey }, capture()));
      expect({ name, code: e.code }).toEqual({ name, code: 'audit-out' });
      expect(e.message).toMatch(message);
    }
    expect(readdirSync(outs).sort()).toEqual(['a-dir.json', 'a-pipe.json', 'sig-dir.sigstore.json']);
    expect(readdirSync(join(outs, 'a-dir.json'))).toEqual([]);
  });

  it('verify: a --key that is no public key gets a hint saying what to pass; a --repo that is no repository is named, without "pass --repo"', async () => {
    const signedPath = join(dir, 'run.audit.json');
    if (!existsSync(signedPath)) expect(await auditVerb(run.runId, { repo: run.repo, out: signedPath, sign: true, key: keys.privateKey }, capture())).toBe(0);
    const bad = tempDir('agora-bad-key-');
    writeFileSync(join(bad, 'notes.txt'), 'not a key\n');
    writeFileSync(join(bad, 'garbled.pem'), '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
    for (const key of [join(bad, 'notes.txt'), join(bad, 'garbled.pem'), bad]) {
      const r = await agora(dir, ['verify', signedPath, '--key', key]);
      expect({ key, code: r.code }).toEqual({ key, code: 1 });
      expect(r.stderr).toMatch(new RegExp(`^agora: ${key}: .*\nhint: Pass (the signer's public key|the key file itself)`));
    }
    const notRepo = tempDir('agora-not-a-repo-');
    const r = await agora(dir, ['verify', signedPath, '--repo', notRepo]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `agora: --repo ${notRepo} is not a git repository\nhint: check the path: --repo names a git work tree or a bare repository (\`git init\` makes one)\n`,
    );
  });

  it('--item prints entries with inclusion proofs that check alone', async () => {
    const io = capture();
    expect(await auditVerb(run.runId, { repo: run.repo, item: 'edit-beta' }, io)).toBe(0);
    const ev = JSON.parse(io.stdout.join('\n')) as ItemEvidence;
    expect(ev.entries.length).toBe(3);
    expect(verifyItemEvidence(ev)).toEqual([]);
  });

  it('refuses bad input with a one-line reason and writes nothing', async () => {
    const files = () => readdirSync(dir).sort();
    const before = files();
    const notJson = join(dir, 'not.json');
    writeFileSync(notJson, 'hello');
    const newer = join(dir, 'newer.json');
    writeFileSync(newer, JSON.stringify({ format: 'agora.audit/v9' }));
    const good = join(dir, 'run.audit.json');
    const goodText = readFileSync(good, 'utf8');
    const twiceRoot = join(dir, 'twice-root.json');
    writeFileSync(twiceRoot, goodText.replace('"root": ', `"root": "${'0'.repeat(64)}",\n  "root": `));
    const twicePayload = join(dir, 'twice-payload.sigstore.json');
    const sigText = readFileSync(sigstorePathFor(good), 'utf8');
    writeFileSync(twicePayload, sigText.replace('"payload": ', '"payload": "e30=",\n    "payload": '));
    const cases: Array<[() => Promise<unknown>, string, RegExp]> = [
      [() => verifyVerb(notJson, {}, capture()), 'bundle-invalid', /not JSON/],
      [() => verifyVerb(join(dir, 'absent.json'), {}, capture()), 'bundle-unreadable', /no such file/],
      [() => verifyVerb(newer, {}, capture()), 'bundle-version', /agora\.audit\/v9 is newer/],
      [
        () => verifyVerb(good, { sigstore: join(dir, 'absent.sigstore.json'), key: keys.publicKey }, capture()),
        'sigstore-unreadable',
        /cannot read the Sigstore bundle/,
      ],
      [() => verifyVerb(good, { sigstore: notJson, key: keys.publicKey }, capture()), 'sigstore-invalid', /not JSON/],
      [
        () => verifyVerb(twiceRoot, { key: keys.publicKey }, capture()),
        'bundle-duplicate-key',
        /twice-root\.json: \$\.root: the key "root" appears twice in one object \(line \d+, column 3 and line \d+, column 3\)/,
      ],
      [
        () => verifyVerb(good, { sigstore: twicePayload, key: keys.publicKey }, capture()),
        'sigstore-invalid',
        /\$\.dsseEnvelope\.payload: the key "payload" appears twice/,
      ],
      [() => verifyVerb(good, { key: keys.privateKey }, capture()), 'key-invalid', /holds a private key/],
      [() => verifyVerb(good, { certificateIdentity: 'x' }, capture()), 'verify-options', /both --certificate-identity and --certificate-oidc-issuer/],
      [() => verifyVerb(good, { trustedRoot: notJson, key: keys.publicKey }, capture()), 'trust-root-invalid', /not JSON/],
      [() => auditVerb('no-such-run', { repo: run.repo }, capture()), 'run-not-found', /no run no-such-run/],
      [
        () => auditVerb(run.runId, { repo: run.repo, sign: true, key: keys.publicKey, out: join(dir, 'x.json') }, capture()),
        'key-invalid',
        /public key|private/i,
      ],
      [() => auditVerb(run.runId, { repo: run.repo, keyless: true, out: join(dir, 'y.json') }, capture(), {}), 'identity-token-missing', /identity token/],
    ];
    for (const [p, code, message] of cases) {
      const e = await rejection(p());
      expect(e.code, e.message).toBe(code);
      expect(e.message).toMatch(message);
      expect(e.message).not.toContain('\n');
    }
    expect(files()).toEqual([...before, 'newer.json', 'not.json', 'twice-payload.sigstore.json', 'twice-root.json'].sort());
  });
});

describe('registerAuditCommands', () => {
  it('adds orch audit, verify and keys generate to a program', async () => {
    const program = new Command('agora').exitOverride();
    const orch = program.command('orch');
    registerAuditCommands(program, orch);
    expect(orch.commands.map((c) => c.name())).toContain('audit');
    expect(program.commands.map((c) => c.name())).toEqual(expect.arrayContaining(['verify', 'keys']));
    const verify = program.commands.find((c) => c.name() === 'verify')!;
    expect(verify.options.map((o) => o.long)).toEqual(
      expect.arrayContaining([
        '--sigstore',
        '--key',
        '--certificate-identity',
        '--certificate-oidc-issuer',
        '--trusted-root',
        '--repo',
        '--json',
        '--run',
        '--plan-commit',
        '--repository',
      ]),
    );
    const out = tempDir('agora-keys-');
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await program.parseAsync(['node', 'agora', 'keys', 'generate', '--out', out]);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
    expect(readdirSync(out).sort()).toEqual(['agora-signing.key.pem', 'agora-signing.pub.pem']);
  });
});
