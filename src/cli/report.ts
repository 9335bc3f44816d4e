import { resolve } from 'node:path';
import { offeredEnvironment } from '../config/secrets.js';
import { collectReport } from '../report/collect.js';
import { renderReport } from '../report/html.js';
import { openContext, type GlobalOptions } from './context.js';
import { runNotFound } from './missing-run.js';
import { writeOutFile } from './out-file.js';
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
  await writeOutFile({ path: out, code: 'report-out', example: 'reports/run.html' }, page);
  io.err(
    `wrote ${out} (${Math.ceil(Buffer.byteLength(page) / 1024)} KiB): run ${runId} ${data.status}, ${data.items.length} items, audit ${data.verdict.intact ? 'intact' : 'NOT intact'}`,
  );
  io.out(out);
  return 0;
}
