import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/repo.js';

/** `npm run demo -- <example>`: each shipped example runs end to end in a scratch repository. */
function demo(example: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const tsx = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', tsx, join(ROOT, 'demo/local.ts'), example], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('npm run demo', () => {
  it.each([
    ['offload-fanout', 'fanout-1-1', ['edit-alpha', 'edit-beta', 'edit-shared']],
    ['pipeline', 'pipeline-1', ['extract', 'summarize']],
    ['map-reduce', 'wordcount-1', ['count-words.shard-1', 'count-words.shard-2', 'count-words.shard-3', 'count-words.shard-4', 'reduce']],
  ])('%s runs end to end and shows its integration commits', async (example, runId, changed) => {
    const r = await demo(example);
    expect(r.stderr).toContain(`run ${runId}: done`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Items of ${runId}:`);
    for (const item of changed) expect(r.stdout).toContain(`Agora-Item: ${item}`);
    expect(r.stdout).toContain(`refs/agora/runs/${runId}`);
  });

  it('names the examples when asked for one that does not exist', async () => {
    const r = await demo('nope');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('examples: map-reduce, offload-fanout, pipeline');
  });
});
