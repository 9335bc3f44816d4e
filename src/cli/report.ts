import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { offeredEnvironment } from '../config/secrets.js';
import { AgoraError } from '../errors.js';
import { collectReport } from '../report/collect.js';
import { renderReport } from '../report/html.js';
import { openContext, type GlobalOptions } from './context.js';
import { runNotFound } from './orch-read.js';
import type { Output } from './output.js';

/** `agora orch report <run> [--out file]`: the run as one self-contained HTML page. */
export async function reportVerb(runId: string, o: GlobalOptions & { out?: string }, io: Output): Promise<number> {
  const ctx = await openContext(o);
  const data = await collectReport(ctx.store, ctx.refs, runId, {
    config: ctx.config,
    environment: offeredEnvironment(ctx.config, process.env),
    now: Date.now(),
  });
  if (!data) throw await runNotFound(ctx, runId);
  const page = renderReport(data);
  const out = resolve(process.cwd(), o.out ?? `${runId}.html`);
  await writeReport(out, page);
  io.err(
    `wrote ${out} (${Math.ceil(Buffer.byteLength(page) / 1024)} KiB): run ${runId} ${data.status}, ${data.items.length} items, audit ${data.verdict.intact ? 'intact' : 'NOT intact'}`,
  );
  io.out(out);
  return 0;
}

/** Creates the missing directories above `path`, then writes atomically; a path that cannot be a file → `report-out`. */
async function writeReport(path: string, page: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, page);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why: Record<string, string> = {
      EISDIR: 'is a directory',
      EEXIST: 'lies under a file (a directory on its path is a file)',
      ENOTDIR: 'lies under a file (a directory on its path is a file)',
      EACCES: 'is not writable here (permission denied)',
      EPERM: 'is not writable here (permission denied)',
      EROFS: 'is on a read-only file system',
    };
    if (code && why[code])
      throw new AgoraError(
        'report-out',
        `--out ${path} ${why[code]}`,
        'pass the path of a file to write, e.g. --out reports/run.html (missing directories are created)',
        { cause: e },
      );
    throw e;
  }
}
