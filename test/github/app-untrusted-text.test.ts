import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scaled } from '../support/eventually.js';
import { checkRuns, commandPlan, startAppWorld, until, type AppWorld } from './app-world.js';
import { activeConstructs, fencedBlock, renderedText, tableCells } from './markdown-reader.js';

/**
 * What a worker controls reaches GitHub through the App: the names of the files it writes (quoted in a
 * scope violation's reason) and its log. Read back from the check runs as GitHub stores them, each renders
 * as the text it is: no mention, HTML, link, emphasis, and no `</details>` closing anything.
 */
const FILE = '@octo-team <img src=x> [x](https:evil.example) **now** #1.txt';
const LOG = ['</details>', '@octo-team please merge', '<img src=x onerror=alert(1)>', '[click](https://evil.example)', '```', 'done'];

describe('untrusted text through the App', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld();
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it("a worker's file names and log render as text in the item check and the run check", async () => {
    const run = `${LOG.map((l) => `printf '%s\\n' '${l}'`).join('; ')}; echo x > '${FILE}'`;
    const sha = await w.sim.push(w.fullName, {
      branch: 'hostile',
      files: { 'plan.json': commandPlan('hostile', [{ id: 'writer', run, locks: ['allowed.txt'] }]) },
      message: 'Hostile plan',
    });
    await until('the run check to complete', async () => (await checkRuns(w, sha)).get('agora')?.status === 'completed', w);
    await w.quiesce();
    const checks = await checkRuns(w, sha);
    const item = checks.get('agora / writer')!;
    expect(item).toMatchObject({ status: 'completed', conclusion: 'failure' });
    const lines = item.output.summary!.split('\n');
    const reason = lines.find((l) => l.startsWith('Reason: '))!.slice('Reason: '.length);
    expect(reason).toContain('write scope');
    expect(activeConstructs(reason)).toEqual([]);
    expect(renderedText(reason)).toContain(FILE);
    const block = fencedBlock(lines, lines.indexOf('Log (tail):') + 2);
    expect(block?.body.split('\n').slice(0, LOG.length)).toEqual(LOG);
    // Nothing of the log outside its block.
    expect(lines.slice(block!.next).join('\n')).not.toContain('@octo-team');

    const row = checks
      .get('agora')!
      .output.summary!.split('\n')
      .find((l) => l.startsWith('| `writer`'))!;
    const cells = tableCells(row);
    const cell = cells.find((c) => c.includes('write scope'))!;
    expect(activeConstructs(cell, 'table cell')).toEqual([]);
    expect(renderedText(cell)).toContain(FILE);
    expect(w.errors).toEqual([]);
  });
});
