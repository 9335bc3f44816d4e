import { chmod, lstat, mkdir, readFile, readdir, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { extractWorkspace, packWorkspace, safeRelativePath, UnsafeArchiveError } from '../../src/executors/docker-archive.js';
import { tempDir } from './engine.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function dir(): Promise<string> {
  const t = await tempDir('agora-archive-');
  cleanups.push(t.cleanup);
  return t.dir;
}

/** Every path under `root` with its kind, mode and content (or link target), sorted. */
async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const rel of (await readdir(root, { recursive: true })).sort()) {
    const p = join(root, rel);
    const st = await lstat(p);
    const mode = (st.mode & 0o777).toString(8);
    if (st.isSymbolicLink()) out.push(`${rel} link ${await readlink(p)}`);
    else if (st.isDirectory()) out.push(`${rel} dir ${mode}`);
    else out.push(`${rel} file ${mode} ${await readFile(p, 'utf8')}`);
  }
  return out;
}

/** A tar built entry by entry, as an engine (or an attacker) could send it. */
function tarOf(entries: Array<{ name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string; linkname?: string; mode?: number }>): Readable {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === undefined || e.type === 'file') pack.entry({ name: e.name, mode: e.mode ?? 0o644 }, e.body ?? '');
    else pack.entry({ name: e.name, type: e.type, linkname: e.linkname, mode: e.mode ?? 0o755 });
  }
  pack.finalize();
  return Readable.from(pack);
}

describe('workspace archive', () => {
  it('round-trips files, nested dirs, modes and symlinks, and replaces what was there', async () => {
    const src = await dir();
    await writeFile(join(src, 'a.txt'), 'A\n');
    await mkdir(join(src, 'deep/er'), { recursive: true });
    await writeFile(join(src, 'deep/er/run.sh'), '#!/bin/sh\n');
    await chmod(join(src, 'deep/er/run.sh'), 0o755);
    await symlink('../a.txt', join(src, 'deep/link'));
    await symlink('/etc/passwd', join(src, 'abs-link'));
    const dst = await dir();
    await writeFile(join(dst, 'stale.txt'), 'to be deleted');
    await mkdir(join(dst, 'stale-dir'));

    await extractWorkspace(packWorkspace(src, { prefix: 'workspace/', uid: 65534, gid: 65534 }), dst, { stripPrefix: 'workspace' });

    expect(await snapshot(dst)).toEqual(await snapshot(src));
    expect(await snapshot(dst)).toContain('deep/er/run.sh file 755 #!/bin/sh\n');
  });

  it('puts every entry under the prefix, owned by the worker uid:gid', async () => {
    const src = await dir();
    await writeFile(join(src, 'f'), 'x');
    const headers: Array<{ name: string; uid: number; gid: number }> = [];
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      headers.push({ name: h.name, uid: h.uid, gid: h.gid });
      stream.on('end', () => next());
      stream.resume();
    });
    const done = new Promise<void>((resolve) => extract.on('finish', () => resolve()));
    packWorkspace(src, { prefix: 'workspace/', uid: 1234, gid: 99 }).pipe(extract as unknown as NodeJS.WritableStream);
    await done;
    expect(headers).toEqual([
      { name: 'workspace/', uid: 1234, gid: 99 },
      { name: 'workspace/f', uid: 1234, gid: 99 },
    ]);
  });

  it('normalises names and refuses absolute paths, .. and NUL', () => {
    expect(safeRelativePath('./a/./b')).toBe('a/b');
    expect(safeRelativePath('workspace/a', 'workspace')).toBe('a');
    expect(safeRelativePath('./')).toBe('');
    expect(() => safeRelativePath('/etc/passwd')).toThrow(UnsafeArchiveError);
    expect(() => safeRelativePath('a/../../x')).toThrow(/contains \.\./);
    expect(() => safeRelativePath('a\0b')).toThrow(UnsafeArchiveError);
  });

  it.each([
    ['an absolute path', [{ name: '/tmp/evil' }]],
    ['a .. segment', [{ name: 'a/../../evil' }]],
    ['a path through a symlink', [{ name: 'out', type: 'symlink' as const, linkname: '/tmp' }, { name: 'out/evil' }]],
    ['a file replacing a directory', [{ name: 'd', type: 'directory' as const }, { name: 'd' }]],
    ['a hard link to outside', [{ name: 'h', type: 'link' as const, linkname: '../../etc/passwd' }]],
  ])('rejects %s and leaves the workspace untouched', async (_what, entries) => {
    const dst = await dir();
    await writeFile(join(dst, 'keep.txt'), 'kept');
    await expect(extractWorkspace(tarOf(entries), dst)).rejects.toThrow(UnsafeArchiveError);
    expect(await snapshot(dst)).toEqual(['keep.txt file 644 kept']);
    // Nothing was written next to the workspace either (the staging directory is gone).
    expect((await readdir(join(dst, '..'))).filter((n) => n.startsWith(`.${basename(dst)}.extract-`))).toEqual([]);
  });

  it('never writes through a symlink that a later entry of the same name meets', async () => {
    const outside = await dir();
    const dst = await dir();
    await extractWorkspace(
      tarOf([
        { name: 'x', type: 'symlink', linkname: join(outside, 'victim') },
        { name: 'x', body: 'replaced' },
      ]),
      dst,
    );
    expect(await readdir(outside)).toEqual([]);
    expect(await snapshot(dst)).toEqual(['x file 644 replaced']);
  });

  it('applies directory modes after filling them', async () => {
    const dst = await dir();
    await extractWorkspace(
      tarOf([
        { name: 'ro/', type: 'directory', mode: 0o555 },
        { name: 'ro/inside.txt', body: 'in' },
        { name: 'h', type: 'link', linkname: 'ro/inside.txt' },
      ]),
      dst,
    );
    expect(await snapshot(dst)).toEqual(['h file 644 in', 'ro dir 555', 'ro/inside.txt file 644 in']);
    await chmod(join(dst, 'ro'), 0o755); // so that cleanup can remove it
  });

  // The workspace root is the host's directory: an archive's root entry once made it 0777.
  it.each([
    ['./', ''],
    ['workspace/', 'workspace'],
  ])('never takes the workspace root mode from the archive (root entry %j)', async (name, stripPrefix) => {
    const dst = await dir();
    await chmod(dst, 0o750);
    await extractWorkspace(
      tarOf([
        { name, type: 'directory', mode: 0o777 },
        { name: `${name}f`, body: 'x' },
      ]),
      dst,
      { stripPrefix },
    );
    expect((await stat(dst)).mode & 0o7777).toBe(0o750);
    expect(await snapshot(dst)).toEqual(['f file 644 x']);
  });

  // A repository a worker made at its workspace root (.git/config with core.fsmonitor, hooks) would run
  // on the host at the next `git status` there: such entries stay in the container, and are reported.
  it('skips everything under a top-level .git, whatever its case, and reports what it skipped', async () => {
    const dst = await dir();
    await writeFile(join(dst, 'stale.txt'), 'replaced by the archive');
    const result = await extractWorkspace(
      tarOf([
        { name: './', type: 'directory', mode: 0o755 },
        { name: './.git/', type: 'directory' },
        { name: './.git/config', body: '[core]\n\tfsmonitor = "touch pwned"\n' },
        { name: './.git/hooks/', type: 'directory' },
        { name: './.git/hooks/post-checkout', body: '#!/bin/sh\ntouch pwned\n', mode: 0o755 },
        { name: './.GIT', body: 'gitdir: /elsewhere\n' },
        { name: './linked-config', type: 'link', linkname: './.git/config' },
        { name: './src/.git/config', body: 'a nested repository stays: capture takes its files as plain files' },
        { name: './src/a.ts', body: 'kept' },
        { name: './.gitignore', body: 'kept: only .git itself is refused' },
      ]),
      dst,
    );
    expect(await snapshot(dst)).toEqual([
      '.gitignore file 644 kept: only .git itself is refused',
      'src dir 700', // parents the archive does not list are made owner-only (as before)
      'src/.git dir 700',
      'src/.git/config file 644 a nested repository stays: capture takes its files as plain files',
      'src/a.ts file 644 kept',
    ]);
    expect(result.skippedGitEntries).toEqual(['./.git/', './.git/config', './.git/hooks/', './.git/hooks/post-checkout', './.GIT', './linked-config']);
  });

  it('round-trips a workspace of many small files (written concurrently) with a later duplicate winning', async () => {
    const src = await dir();
    for (let i = 0; i < 300; i++) {
      await mkdir(join(src, `d${i % 10}`), { recursive: true });
      await writeFile(join(src, `d${i % 10}`, `f${i}`), `content ${i}\n`);
    }
    const dst = await dir();
    await extractWorkspace(packWorkspace(src, { prefix: '', uid: 0, gid: 0 }), dst);
    expect(await snapshot(dst)).toEqual(await snapshot(src));

    const dup = await dir();
    await extractWorkspace(
      tarOf([
        { name: 'a', body: 'first' },
        { name: 'b', body: 'b' },
        { name: 'a', body: 'second' },
      ]),
      dup,
    );
    expect(await snapshot(dup)).toEqual(['a file 644 second', 'b file 644 b']);
  });

  /** The first 10,000 bytes of an archive holding a 64 KiB file: a stream of it stops in that file. */
  async function archiveHead(): Promise<Buffer> {
    const src = await dir();
    await writeFile(join(src, 'big.bin'), Buffer.alloc(64 * 1024, 7));
    const chunks: Buffer[] = [];
    for await (const c of packWorkspace(src, { prefix: '', uid: 0, gid: 0 })) chunks.push(c as Buffer);
    return Buffer.concat(chunks).subarray(0, 10_000);
  }

  it('fails on an archive stream that closes before its end, leaving the workspace untouched', async () => {
    const head = await archiveHead();
    let reads = 0;
    // Closes without an error and without an end, like a dropped HTTP body, once its first bytes were read.
    const cut = new Readable({
      read() {
        reads += 1;
        if (reads === 1) this.push(head);
        else this.destroy();
      },
    });
    const dst = await dir();
    await writeFile(join(dst, 'keep.txt'), 'kept');
    await expect(extractWorkspace(cut, dst)).rejects.toThrow(/closed before its end/);
    expect(reads).toBeGreaterThan(1);
    expect(await snapshot(dst)).toEqual(['keep.txt file 644 kept']);
  });

  it('fails on an archive stream that closed, or failed, before the extraction began reading it', async () => {
    const head = await archiveHead();
    const dst = await dir();
    await writeFile(join(dst, 'keep.txt'), 'kept');
    const closed = new Readable({ read() {} });
    closed.push(head);
    closed.destroy();
    await expect(extractWorkspace(closed, dst)).rejects.toThrow(/closed before its end/);
    // An error while the staging directory is made: with no listener yet it would end the process.
    const failing = new Readable({ read() {} });
    failing.push(head);
    const extracting = extractWorkspace(failing, dst);
    failing.destroy(new Error('connection reset by the engine'));
    await expect(extracting).rejects.toThrow(/connection reset by the engine/);
    expect(await snapshot(dst)).toEqual(['keep.txt file 644 kept']);
  });
});
