import { chownSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, agora, cleanupTempDirs, git, makeRepo, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

const EXAMPLE = join(ROOT, 'examples', 'offload-fanout');
/** A config that must never be loaded: importing it fails the command with this text. */
const POISONED_CONFIG = "throw new Error('this config must not be loaded');\n";

describe('finding the repository as git does', () => {
  it('works from a subdirectory of the work tree', async () => {
    const repo = makeRepo({ 'src/deep/file.txt': 'x\n' });
    const r = await agora(join(repo, 'src', 'deep'), ['orch', 'status']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('honours GIT_DIR from outside the repository', async () => {
    const repo = makeRepo({});
    const r = await agora(tempDir(), ['orch', 'status'], { GIT_DIR: join(repo, '.git') });
    expect(r.code).toBe(0);
  });

  it('does not walk into a directory GIT_CEILING_DIRECTORIES names', async () => {
    const repo = makeRepo({ 'sub/file.txt': 'x\n' });
    const r = await agora(join(repo, 'sub'), ['orch', 'status'], { GIT_CEILING_DIRECTORIES: repo });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(repo, 'sub')} is not a git repository, and neither is any directory above it`);
  });
});

describe('a config is code: never one outside the repository unless named', () => {
  it("from outside the repository (--repo, GIT_DIR), the working directory's config is not run; the repository root's is", async () => {
    const elsewhere = tempDir();
    writeFileSync(join(elsewhere, 'agora.config.mjs'), POISONED_CONFIG);
    const repo = makeRepo({});
    const viaRepo = await agora(elsewhere, ['orch', 'status', '--repo', repo]);
    expect(viaRepo.stderr).toBe('');
    expect(viaRepo.code).toBe(0);
    const viaGitDir = await agora(elsewhere, ['orch', 'status'], { GIT_DIR: join(repo, '.git') });
    expect(viaGitDir.code).toBe(0);

    writeFileSync(join(repo, 'agora.config.mjs'), POISONED_CONFIG);
    const rootConfig = await agora(elsewhere, ['orch', 'status', '--repo', repo]);
    expect(rootConfig.stderr).toContain('this config must not be loaded');
  });

  it("validate of a plan in a repository without a config uses the defaults, not the working directory's config", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'agora.config.mjs'), POISONED_CONFIG);
    const repo = makeRepo({
      'plan.json': JSON.stringify({
        id: 'p',
        queue: 'default',
        items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }],
      }),
    });
    const r = await agora(cwd, ['orch', 'validate', join(repo, 'plan.json')]);
    expect(r.stderr).toContain('config: built-in defaults');
    expect(r.code).toBe(0);
  });
});

// Files another user owns can only be made by root (CI runs as root); elsewhere these two are skipped.
const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;

describe('what another user owns is not used unless named (as git refuses dubious ownership)', () => {
  it.skipIf(!asRoot)('a repository found by walking up that another user owns is refused; --repo still opens it', async () => {
    const outer = tempDir();
    git(outer, 'init', '--quiet');
    chownSync(join(outer, '.git'), NOBODY, NOBODY);
    mkdirSync(join(outer, 'work'));
    const r = await agora(join(outer, 'work'), ['orch', 'status']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`agora: the repository found at ${outer} belongs to user id ${NOBODY}, not to you (0)`);
    expect(r.stderr).toContain(`hint: if you trust it, name it with --repo ${outer}`);
  });

  it.skipIf(!asRoot)('a config found in the repository that another user owns is refused; --config still runs it', async () => {
    const dir = tempDir();
    cpSync(EXAMPLE, dir, { recursive: true });
    chownSync(join(dir, 'agora.config.mjs'), NOBODY, NOBODY);
    const found = await agora(dir, ['orch', 'validate', 'plan.json']);
    expect(found.code).toBe(1);
    expect(found.stderr).toContain(`agora.config.mjs belongs to user id ${NOBODY}, not to you (0)`);
    const named = await agora(dir, ['orch', 'validate', 'plan.json', '--config', 'agora.config.mjs']);
    expect(named.code).toBe(0);
  });
});

describe('validate finds the config beside the plan', () => {
  it("validates the example's own plan inside its folder, with no repository at all, and says which config it used", async () => {
    const dir = tempDir();
    cpSync(EXAMPLE, dir, { recursive: true });
    const r = await agora(dir, ['orch', 'validate', 'plan.json']);
    expect(r.stdout).toContain('plan.json: valid — 4 items');
    expect(r.stderr).toBe(`config: ${join(dir, 'agora.config.mjs')}\n`);
    expect(r.code).toBe(0);
  });

  it("from the repository's root, checks a plan in a subfolder against the config beside it, not the root's", async () => {
    const repo = makeRepo({ 'agora.config.mjs': 'export const orch = {};\n' });
    cpSync(EXAMPLE, join(repo, 'examples', 'fanout'), { recursive: true });
    const r = await agora(repo, ['orch', 'validate', 'examples/fanout/plan.json']);
    expect(r.stderr).toBe(`config: ${join(repo, 'examples', 'fanout', 'agora.config.mjs')}\n`);
    expect(r.code).toBe(0);
  });

  it("looks upward to the repository's root and never past it (a config is code)", async () => {
    const outer = tempDir();
    writeFileSync(join(outer, 'agora.config.mjs'), POISONED_CONFIG);
    const repo = join(outer, 'repo');
    mkdirSync(join(repo, 'plans'), { recursive: true });
    git(outer, 'init', '--quiet', repo);
    writeFileSync(
      join(repo, 'plans', 'plan.json'),
      JSON.stringify({ id: 'p', queue: 'default', items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }] }),
    );
    const none = await agora(join(repo, 'plans'), ['orch', 'validate', 'plan.json']);
    expect(none.stderr).toContain('config: built-in defaults');
    expect(none.code).toBe(0);

    writeFileSync(join(repo, 'agora.config.mjs'), 'export const orch = { defaultConcurrency: 2 };\n');
    const root = await agora(join(repo, 'plans'), ['orch', 'validate', 'plan.json']);
    expect(root.stderr).toBe(`config: ${join(repo, 'agora.config.mjs')}\n`);
    expect(root.code).toBe(0);
  });

  it('uses --config when given, and fails on a broken config it was told to use', async () => {
    const dir = tempDir();
    cpSync(EXAMPLE, dir, { recursive: true });
    writeFileSync(join(dir, 'broken.mjs'), POISONED_CONFIG);
    const r = await agora(dir, ['orch', 'validate', 'plan.json', '--config', 'broken.mjs']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('this config must not be loaded');
  });
});
