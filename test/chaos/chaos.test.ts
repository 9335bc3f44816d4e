import { describe, expect, it } from 'vitest';
import { scaled } from '../support/eventually.js';
import { campaign, canFillDisk, type Mode } from './campaign.js';

/**
 * A fixed-seed sample of the crash campaign (`npm run chaos` runs 200; see campaign.ts): 20 cases, two at
 * a time, half killed at a step or a random moment, half with the disk filled (root only). One kill and
 * restart cycle takes 10–45 s (four CLI processes, each loading the program), so this file takes a few
 * minutes; it runs beside the rest of the suite.
 */
const SEED = 1001;
const SAMPLE = 20;

describe('crash campaign (sample)', () => {
  const noDisk = canFillDisk();
  const modes: Mode[] = noDisk ? ['kill'] : ['kill', 'disk'];
  it(
    `every run killed or starved of disk and restarted ends done, each item integrated once, audit and verify pass, fsck clean${noDisk ? ` (full-disk cases skipped: ${noDisk})` : ''}`,
    async () => {
      const results = await campaign({ cases: SAMPLE, seed: SEED, modes, jobs: 2 });
      const failed = results.filter((r) => r.problems.length > 0);
      expect(failed.map((r) => `case ${r.index} seed ${r.seed} ${r.mode} ${r.fault}: ${r.problems.join('; ')}`)).toEqual([]);
      expect(results).toHaveLength(SAMPLE);
    },
    scaled(600_000),
  );
});
