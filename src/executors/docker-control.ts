import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { EMIT_FILE, MAX_EMIT_BYTES } from './control-files.js';
import type { WorkerJob } from './types.js';

/**
 * An attempt's control files in and out of its container, through the archive API like the workspace
 * (so the engine may be remote): `$AGORA_PARAMS` goes in before the start, `$AGORA_EMIT/items.json`
 * comes out after the exit. Both live in the container's `/agora` volume, never in `/workspace`, so
 * neither is part of the patch.
 */

/**
 * The tar put at `/` before the start: `agora/` (the volume's root, owned by the worker so that it can
 * use it, mode 0700), `agora/params.json` (the parameters, readable by the worker only) and an empty
 * `agora/emit/` the worker may write.
 */
export async function packControl(job: WorkerJob, owner: { uid: number; gid: number }): Promise<Readable> {
  const pack = tar.pack();
  const mtime = new Date();
  const add = (header: Partial<tar.Header> & { name: string }, body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body === undefined) pack.entry({ ...owner, mtime, ...header }, done);
      else pack.entry({ ...owner, mtime, ...header }, body, done);
    });
  await add({ name: 'agora/', type: 'directory', mode: 0o700 });
  if (job.paramsFile !== undefined) {
    const body = await readFile(job.paramsFile);
    await add({ name: 'agora/params.json', type: 'file', mode: 0o400, size: body.length }, body);
  }
  if (job.emitDir !== undefined) await add({ name: 'agora/emit/', type: 'directory', mode: 0o700 });
  pack.finalize();
  // tar-stream's streams are streamx streams; the Docker client wants a Node stream.
  return Readable.from(pack);
}

/**
 * Copies what the worker left at `/agora/emit/items.json` (the archive `source` of that path) into the
 * empty host directory `emitDir`, as faithfully as the reader needs: a regular file within the limit
 * as it is; a larger one as a sparse file of the same size, so the reader refuses it by its size without
 * this process holding its bytes; anything else (a directory, a link) as a directory, which the reader
 * refuses as not a regular file. `source` is always consumed or destroyed.
 */
export async function copyEmitted(source: Readable, emitDir: string): Promise<void> {
  const extract = tar.extract();
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract);
  const to = join(emitDir, EMIT_FILE);
  let copied = false;
  try {
    for await (const entry of extract) {
      const { name, type, size = 0 } = entry.header;
      if (copied || name.replace(/\/+$/, '') !== EMIT_FILE) {
        entry.resume();
        continue;
      }
      copied = true;
      if (type === 'file' && size <= MAX_EMIT_BYTES) {
        const chunks: Buffer[] = [];
        for await (const chunk of entry) chunks.push(chunk as Buffer);
        await writeFile(to, Buffer.concat(chunks), { flag: 'wx', mode: 0o600 });
      } else if (type === 'file') {
        entry.resume();
        const file = await open(to, 'wx', 0o600);
        try {
          await file.truncate(size);
        } finally {
          await file.close();
        }
      } else {
        entry.resume();
        await mkdir(to);
      }
    }
  } finally {
    source.destroy();
  }
}
