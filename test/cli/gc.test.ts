import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditBundle } from '../../src/audit/bundle.js';
import { buildAuditBundle } from '../../src/audit/build-bundle.js';
import { verifyVerb } from '../../src/cli/audit.js';
import { gcVerb, parseAge } from '../../src/cli/gc.js';
import { retryVerb, submitVerb } from '../../src/cli/orch.js';
import type { Output } from '../../src/cli/output.js';
import { armCrashPoint, CrashedAt } from '../../src/crash-points.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { RunRefs } from '../../src/runs/refs.js';
import { scaled } from '../support/eventually.js';
import { agora, cleanupTempDirs, git, makeRepo, tempDir } from '../support/repo.js';
import { copyRun, finishedRun, type FinishedRun } from '../audit/bundle-fixture.js';

function capture(): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, tty: false, out: (t) => stdout.push(t), err: (t) => stderr.push(t) };
}

const HOUR = 3_600_000;
let original: FinishedRun;
beforeAll(async () => {
  original = await finishedRun();
});
afterAll(cleanupTempDirs);

/** Points the claims ref at a hand-written, parentless commit holding `text` as claims.json. */
function plantClaims(repo: string, ref: string, text: string): void {
  const blob = execFileSync('git', ['hash-object', '-w', '--stdin'], { cwd: repo, input: text, encoding: 'utf8' }).trim();
  const tree = execFileSync('git', ['mktree'], { cwd: repo, input: `100644 blob ${blob}\tclaims.json\n`, encoding: 'utf8' }).trim();
  git(repo, 'update-ref', ref, git(repo, 'commit-tree', tree, '-m', 'claims').trim());
}

function readClaims(repo: string, ref: string): unknown {
  return JSON.parse(git(repo, 'show', `${ref}:claims.json`));
}

async function agoraRefs(run: FinishedRun): Promise<string[]> {
  return (await run.store.listRefs(run.refs.ns)).map((r) => r.ref).sort();
}

describe('agora orch gc', () => {
  it('keeps a run that finished after the cut-off, and changes nothing in a dry run', async () => {
    const run = await copyRun(original);
    const before = await agoraRefs(run);
    const recent = capture();
    expect(await gcVerb({ repo: run.repo, olderThan: '1h', discardBundles: true }, recent)).toBe(0);
    expect(JSON.parse(recent.stdout.join('\n')).pruned).toEqual([]);
    const dry = capture();
    const dir = join(tempDir('agora-gc-dry-'), 'bundles');
    expect(await gcVerb({ repo: run.repo, olderThan: '1h', bundleDir: dir, dryRun: true }, dry, Date.now() + 2 * HOUR)).toBe(0);
    expect(JSON.parse(dry.stdout.join('\n')).pruned.map((p: { runId: string }) => p.runId)).toEqual([run.runId]);
    expect(dry.stderr.join('\n')).toContain('would prune 1 run');
    expect(existsSync(dir)).toBe(false);
    expect(await agoraRefs(run)).toEqual(before);
  });

  it("prunes a finished run's refs after writing its bundle; its anchor moves to the archive and the kept bundle verifies", async () => {
    const run = await copyRun(original);
    expect((await agoraRefs(run)).some((r) => r.startsWith(run.refs.patch(run.runId, '')))).toBe(true);
    const dir = join(tempDir('agora-gc-'), 'bundles');
    const io = capture();
    expect(await gcVerb({ repo: run.repo, olderThan: '1h', bundleDir: dir }, io, Date.now() + 2 * HOUR)).toBe(0);
    const path = join(dir, `${run.runId}.audit.json`);
    expect(JSON.parse(io.stdout.join('\n')).pruned).toEqual([expect.objectContaining({ runId: run.runId, status: 'done', bundle: path })]);
    // Two refs are left, however many runs were pruned: the archive of their anchors, and the claims
    // ledger all runs share (an entry whose run is gone is void: src/engine/cross-run-holdings.ts).
    expect(await agoraRefs(run)).toEqual([run.refs.anchorArchive, run.refs.claims]);

    const bundle = JSON.parse(readFileSync(path, 'utf8')) as AuditBundle;
    expect(bundle.runId).toBe(run.runId);
    const archive = await run.store.readTree((await run.store.readCommit((await run.store.resolveRef(run.refs.anchorArchive))!)).tree);
    expect(archive.map((e) => e.path)).toEqual([`${run.runId}.json`]);
    const anchored = JSON.parse(new TextDecoder().decode(await run.store.readBlob(archive[0]!.oid)));
    expect(anchored).toMatchObject({ runId: run.runId, root: bundle.root });
    const verified = capture();
    expect(await verifyVerb(path, {}, verified)).toBe(0);

    // Again: nothing left to prune, nothing fails.
    const again = capture();
    expect(await gcVerb({ repo: run.repo, olderThan: '1h', bundleDir: dir }, again, Date.now() + 2 * HOUR)).toBe(0);
    expect(JSON.parse(again.stdout.join('\n')).pruned).toEqual([]);
  });

  it("removes a pruned run's attempt claims, dispatch records, results and claims entries, and nothing of another run", async () => {
    const run = await copyRun(original);
    const other = `${run.runId}-next`; // shares the pruned run's id as a prefix
    const oid = (await run.store.resolveRef(run.refs.integration(run.runId)))!;
    const planted = [
      run.refs.claim(run.runId, 'build', 1),
      run.refs.result(run.runId, 'build', 1),
      run.refs.claim(other, 'build', 1),
      run.refs.result(other, 'build', 1),
      run.refs.dispatch(run.runId, 'build', 1),
    ];
    for (const ref of planted) git(run.repo, 'update-ref', ref, oid);
    const entry = { item: 'build', afterSeq: 2, queue: 'default', locks: ['src'] };
    const doc = {
      version: 1,
      claims: [
        { ...entry, run: run.runId, attempt: 1 },
        { ...entry, run: other, attempt: 1 },
      ],
      waits: [{ ...entry, run: run.runId, acceptedAt: 1 }],
    };
    plantClaims(run.repo, run.refs.claims, JSON.stringify(doc));

    const dry = capture();
    expect(await gcVerb({ repo: run.repo, olderThan: '1h', discardBundles: true, dryRun: true }, dry, Date.now() + 2 * HOUR)).toBe(0);
    expect(JSON.parse(dry.stdout.join('\n')).claims).toEqual({ dropped: 2 });
    expect(readClaims(run.repo, run.refs.claims)).toEqual(doc);

    const io = capture();
    expect(await gcVerb({ repo: run.repo, olderThan: '1h', discardBundles: true }, io, Date.now() + 2 * HOUR)).toBe(0);
    expect(JSON.parse(io.stdout.join('\n')).claims).toEqual({ dropped: 2 });
    expect(await agoraRefs(run)).toEqual([run.refs.anchorArchive, run.refs.claims, planted[2], planted[3]].sort());
    expect(readClaims(run.repo, run.refs.claims)).toEqual({ version: 1, claims: [doc.claims[1]], waits: [] });

    // A claims document Agora did not write is reported (and gc exits 1), the runs are pruned all the same.
    const next = await copyRun(original);
    plantClaims(next.repo, next.refs.claims, JSON.stringify({ version: 1, claims: [{ ...entry, run: '../x', attempt: 1 }], waits: [] }));
    const bad = capture();
    expect(await gcVerb({ repo: next.repo, olderThan: '1h', discardBundles: true }, bad, Date.now() + 2 * HOUR)).toBe(1);
    const report = JSON.parse(bad.stdout.join('\n'));
    expect(report.pruned.map((p: { runId: string }) => p.runId)).toEqual([next.runId]);
    expect(report.claims.problem).toContain('claims[0]');
    expect(bad.stderr.join('\n')).toContain(`their entries stay in ${next.refs.claims}`);
  });

  it('finishes what an interrupted gc left: the refs of an anchored run whose state ref is gone', async () => {
    const run = await copyRun(original);
    await buildAuditBundle(run.store, run.refs, run.runId, { anchor: true, now: Date.now() });
    const stateRef = run.refs.run(run.runId);
    expect(await run.store.deleteRef(stateRef, (await run.store.resolveRef(stateRef))!)).toBe(true); // the crash came here
    const io = capture();
    expect(await gcVerb({ repo: run.repo, olderThan: '1h', discardBundles: true }, io)).toBe(0);
    const report = JSON.parse(io.stdout.join('\n'));
    expect(report.leftovers).toContain(run.refs.integration(run.runId));
    expect(report.leftovers.some((r: string) => r.startsWith(run.refs.patch(run.runId, '')))).toBe(true);
    expect(report.archived).toEqual([run.runId]);
    expect(await agoraRefs(run)).toEqual([run.refs.anchorArchive, run.refs.claims]);
  });

  it('keeps a run whose audit is not intact, saying why, and exits 1', async () => {
    const run = await copyRun(original);
    const stored = (await run.store.resolveRef(run.refs.integration(run.runId)))!;
    const base = (await run.store.readCommit(stored)).parents[0]!;
    expect(await run.store.casRef(run.refs.integration(run.runId), base, stored)).toBe(true); // someone moved it
    const before = await agoraRefs(run);
    const io = capture();
    expect(await gcVerb({ repo: run.repo, olderThan: '1h', discardBundles: true }, io, Date.now() + 2 * HOUR)).toBe(1);
    const report = JSON.parse(io.stdout.join('\n'));
    expect(report.pruned).toEqual([]);
    expect(report.skipped).toEqual([{ runId: run.runId, why: expect.stringContaining('not intact (integration') }]);
    expect(await agoraRefs(run)).toEqual(before);
  });

  it("never gives a pruned run's id to a new submission, and never removes a submission", async () => {
    const run = await copyRun(original);
    expect(await gcVerb({ repo: run.repo, olderThan: '1h', discardBundles: true }, capture(), Date.now() + 2 * HOUR)).toBe(0);
    const submitted = capture();
    const runId = await submitVerb(join(run.repo, 'plan.json'), { repo: run.repo, config: join(run.repo, 'agora.config.mjs') }, submitted);
    expect(runId).not.toBe(run.runId);
    expect(await gcVerb({ repo: run.repo, olderThan: '1h', discardBundles: true }, capture(), Date.now() + 2 * HOUR)).toBe(0);
    expect(await run.store.resolveRef(run.refs.inbox(runId))).not.toBeNull();
  });

  it('leaves alone a run reopened by a Retry and refs Agora would not have named', async () => {
    const repo = makeRepo({
      'plan.json': `${JSON.stringify({ id: 'fails', queue: 'default', items: [{ id: 'boom', executor: 'command', inputs: { run: 'exit 3' }, depends_on: [], resourceLocks: [] }] })}\n`,
    });
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).not.toBe(0);
    const store = await openLocalStore(repo);
    const refs = new RunRefs();
    const [failed] = (await store.listRefs(refs.runsPrefix)).map((r) => r.ref.slice(refs.runsPrefix.length));
    const foreign = `${refs.runsPrefix}not/ours`;
    expect(await store.casRef(foreign, (await store.resolveRef(refs.run(failed!)))!, null)).toBe(true);
    expect(await retryVerb(failed!, 'boom', { repo }, capture())).toBe(0); // running again, and nobody serves it
    const io = capture();
    expect(await gcVerb({ repo, olderThan: '1h', discardBundles: true }, io, Date.now() + 2 * HOUR)).toBe(1);
    const report = JSON.parse(io.stdout.join('\n'));
    expect(report.pruned).toEqual([]);
    expect(report.skipped).toEqual([{ runId: 'not/ours', why: expect.stringContaining('is not a run id Agora makes') }]);
    expect(await store.resolveRef(refs.run(failed!))).not.toBeNull();
  });

  it("removes a pruned run's secret parameters from this host, and not those of a run that stays", async () => {
    const plan = (id: string) =>
      JSON.stringify({ id, queue: 'default', items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }] });
    const repo = makeRepo({ 'old.json': plan('old'), 'new.json': plan('new') });
    const stores = join(repo, '.git', 'agora', 'params');
    const storeOf = (runId: string) => {
      const token = (JSON.parse(git(repo, 'show', `refs/agora/runs/${runId}:run.json`)) as { params: { secretStore: string } }).params.secretStore;
      return join(stores, `${token}.json`);
    };
    expect((await agora(repo, ['orch', 'run', 'old.json', '--secret-data', 'token=old-secret-value'])).code).toBe(0);
    const oldStore = storeOf('old-1');
    expect(existsSync(oldStore)).toBe(true);
    expect((await agora(repo, ['orch', 'run', 'new.json', '--secret-data', 'token=new-secret-value'])).code).toBe(0);
    const newStore = storeOf('new-1');
    // A dry run removes no file.
    const dry = capture();
    expect(await gcVerb({ repo, olderThan: '1h', discardBundles: true, dryRun: true }, dry, Date.now() + HOUR)).toBe(0);
    expect(JSON.parse(dry.stdout.join('\n')).secretParams).toEqual([]);
    expect(existsSync(oldStore)).toBe(true);
    const io = capture();
    const finishedNew = (JSON.parse(git(repo, 'show', 'refs/agora/runs/new-1:run.json')) as { finishedAt: number }).finishedAt;
    const finishedOld = (JSON.parse(git(repo, 'show', 'refs/agora/runs/old-1:run.json')) as { finishedAt: number }).finishedAt;
    // A cut-off between the two runs' ends: old-1 goes, new-1 stays.
    expect(finishedNew).toBeGreaterThan(finishedOld);
    const between = finishedOld + Math.max(1, Math.floor((finishedNew - finishedOld) / 2));
    expect(await gcVerb({ repo, olderThan: '1h', discardBundles: true }, io, between + HOUR)).toBe(0);
    const report = JSON.parse(io.stdout.join('\n'));
    expect(report.pruned.map((p: { runId: string }) => p.runId)).toEqual(['old-1']);
    expect(report.secretParams).toEqual(['old-1']);
    expect(existsSync(oldStore)).toBe(false);
    expect(existsSync(newStore)).toBe(true);
  });

  it("leaves no secret parameters on this host when it dies just after removing the run's ref", async () => {
    const plan = JSON.stringify({
      id: 'gone',
      queue: 'default',
      items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }],
    });
    const repo = makeRepo({ 'gone.json': plan });
    expect((await agora(repo, ['orch', 'run', 'gone.json', '--secret-data', 'token=gone-secret-value'])).code).toBe(0);
    const token = (JSON.parse(git(repo, 'show', 'refs/agora/runs/gone-1:run.json')) as { params: { secretStore: string } }).params.secretStore;
    const secretStore = join(repo, '.git', 'agora', 'params', `${token}.json`);
    expect(existsSync(secretStore)).toBe(true);
    let crashed = false;
    armCrashPoint('run-ref-deleted', 1, () => (crashed = true));
    await gcVerb({ repo, olderThan: '1h', discardBundles: true }, capture(), Date.now() + 2 * HOUR).catch((e: unknown) => {
      if (!(e instanceof CrashedAt)) throw e;
    });
    expect(crashed).toBe(true);
    expect(git(repo, 'for-each-ref', 'refs/agora/runs/')).toBe(''); // the run's ref is gone: nothing names the file now
    expect(existsSync(secretStore)).toBe(false);
  });

  it('keeps a run whose bundle name in --bundle-dir is taken by a directory or by a file that is no bundle, saying why, and exits 1', async () => {
    const run = await copyRun(original);
    const before = await agoraRefs(run);
    const dir = tempDir('agora-gc-taken-');
    const path = join(dir, `${run.runId}.audit.json`);
    for (const [take, why] of [
      [() => mkdirSync(path), `${path} is a directory; move it away and run gc again`],
      [() => writeFileSync(path, 'my notes\n'), `${path} already holds something that is not an audit bundle (not JSON); move it away and run gc again`],
    ] as const) {
      rmSync(path, { recursive: true, force: true });
      take();
      const io = capture();
      expect(await gcVerb({ repo: run.repo, olderThan: '1h', bundleDir: dir }, io, Date.now() + 2 * HOUR)).toBe(1);
      const report = JSON.parse(io.stdout.join('\n')) as { pruned: unknown[]; skipped: unknown[] };
      expect(report.pruned).toEqual([]);
      expect(JSON.stringify(report.skipped)).toContain(JSON.stringify(why).slice(1, -1));
      expect(await agoraRefs(run)).toEqual(before);
    }
  });

  it('refuses a --bundle-dir under a regular file, naming both, and prunes nothing', async () => {
    const run = await copyRun(original);
    const before = await agoraRefs(run);
    const file = join(tempDir('agora-gc-file-'), 'somefile');
    writeFileSync(file, 'mine\n');
    for (const dryRun of [[], ['--dry-run']]) {
      const r = await agora(run.repo, ['orch', 'gc', '--older-than', '0s', '--bundle-dir', `${file}/sub`, ...dryRun]);
      expect({ dryRun, code: r.code }).toEqual({ dryRun, code: 1 });
      expect(r.stderr).toBe(
        `agora: --bundle-dir ${file}/sub lies under ${file}, which is a file, not a directory\nhint: pass a directory, or a path where one can be created\n`,
      );
    }
    expect(await agoraRefs(run)).toEqual(before);
  });

  it('refuses, before it prunes anything, an anchor archive that is not one, naming the ref and how to mend it', async () => {
    const run = await copyRun(original);
    const bundles = tempDir('agora-gc-archive-');
    // Each way a pushed ref can miss: not a commit, a commit whose tree is not in the repository...
    const blob = execFileSync('git', ['hash-object', '-w', '--stdin'], { cwd: run.repo, input: 'no archive', encoding: 'utf8' }).trim();
    const treeless = execFileSync('git', ['hash-object', '-t', 'commit', '-w', '--stdin', '--literally'], {
      cwd: run.repo,
      input: `tree ${'1'.repeat(40)}\nauthor a <a@a> 1 +0000\ncommitter a <a@a> 1 +0000\n\nx\n`,
      encoding: 'utf8',
    }).trim();
    // An ordinary commit, and one with an archive's message whose tree is not one.
    const head = git(run.repo, 'rev-parse', 'HEAD').trim();
    const posing = git(run.repo, 'commit-tree', `${head}^{tree}`, '-m', 'agora: archive the anchors of 1 pruned run').trim();
    for (const junk of [blob, treeless, head, posing]) {
      git(run.repo, 'update-ref', run.refs.anchorArchive, junk);
      const before = await agoraRefs(run);
      const r = await agora(run.repo, ['orch', 'gc', '--older-than', '0s', '--bundle-dir', bundles]);
      expect({ junk, code: r.code }).toEqual({ junk, code: 1 });
      expect(r.stderr).toContain(`agora: ${run.refs.anchorArchive} (${junk}) is not the archive of pruned runs' anchors that \`agora orch gc\` writes`);
      expect(r.stderr).toContain(`hint: restore it to the archive commit gc wrote`);
      expect(await agoraRefs(run)).toEqual(before);
    }
  });

  it.skipIf(!existsSync('/proc/self'))("refuses a --bundle-dir under /proc at once (Node's recursive mkdir would spin there for ever)", async () => {
    const run = await copyRun(original);
    const before = await agoraRefs(run);
    const r = await agora(run.repo, ['orch', 'gc', '--older-than', '0s', '--bundle-dir', '/proc/agora-nowhere/sub'], {}, scaled(30_000));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'agora: --bundle-dir /proc/agora-nowhere/sub needs /proc/agora-nowhere, which cannot be created: /proc takes no new directories',
    );
    expect(await agoraRefs(run)).toEqual(before);
  });

  it('refuses bad usage (an age without its unit, no destination) with a message, no stack trace and exit 2, as docs/cli.md says', async () => {
    expect(parseAge('30d')).toBe(30 * 24 * HOUR);
    expect(() => parseAge('30 days')).toThrow(/--older-than "30 days" is not an age/);
    const noDestination = await agora(original.repo, ['orch', 'gc', '--older-than', '30d']);
    expect(noDestination.code).toBe(2);
    expect(noDestination.stderr).toContain('say where their audit bundles go');
    expect(noDestination.stderr).toContain('--bundle-dir <dir>');
    expect(noDestination.stderr).not.toMatch(/\n\s+at /);
    for (const age of ['soon', '5']) {
      const badAge = await agora(original.repo, ['orch', 'gc', '--older-than', age, '--discard-bundles']);
      expect({ age, code: badAge.code }).toEqual({ age, code: 2 });
      expect(badAge.stderr).toBe(`agora: --older-than "${age}" is not an age\nhint: write a whole number and a unit: s, m, h, d or w (for example 30d)\n`);
    }
  });
});
