import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LocalGitStore } from '../../src/git/local-store.js';
import { MAX_PLAN_BYTES } from '../../src/plan/parse.js';
import { checkRuns, startAppWorld, type AppWorld } from './app-world.js';
import { scaled } from '../support/eventually.js';

/**
 * A plan over the 5 MiB limit is refused from its blob's header, before the app reads it: a 40 MB plan
 * once cost the app 160 MB of memory to be told it was too large. Every blob the app reads goes through
 * LocalGitStore.readBlob (the mirror's store is one), so the reads are counted there.
 */
describe('a plan just over the size limit', () => {
  let w: AppWorld;
  beforeAll(async () => {
    w = await startAppWorld();
  }, scaled(60_000));
  afterAll(async () => w?.close());

  it('fails the agora check with plan-too-large, and the app never reads the plan blob', async () => {
    const head = '{"id":"big","queue":"default","items":[],"pad":"';
    const plan = `${head}${'x'.repeat(MAX_PLAN_BYTES + 1 - head.length - 2)}"}`;
    expect(Buffer.byteLength(plan)).toBe(MAX_PLAN_BYTES + 1);
    const planBlob = createHash('sha1').update(`blob ${plan.length}\0`).update(plan).digest('hex');
    const reads = vi.spyOn(LocalGitStore.prototype, 'readBlob');
    try {
      const sha = await w.sim.push(w.fullName, { branch: 'big', files: { 'plan.json': plan }, message: 'A big plan' });
      await w.quiesce();
      const agora = (await checkRuns(w, sha)).get('agora');
      expect(agora).toMatchObject({ status: 'completed', conclusion: 'failure' });
      expect(agora!.output.summary).toContain(`the plan is 5.0 MiB (${MAX_PLAN_BYTES + 1} bytes); the limit is 5 MiB`);
      expect(reads.mock.calls.map(([oid]) => oid)).not.toContain(planBlob);
      // The spy does see plan reads: a small (invalid) plan is read through it.
      const small = '{"id":"small"}\n';
      const smallSha = await w.sim.push(w.fullName, { branch: 'small', files: { 'plan.json': small }, message: 'A small plan' });
      await w.quiesce();
      expect((await checkRuns(w, smallSha)).get('agora')).toMatchObject({ status: 'completed', conclusion: 'failure' });
      expect(reads.mock.calls.map(([oid]) => oid)).toContain(createHash('sha1').update(`blob ${small.length}\0`).update(small).digest('hex'));
    } finally {
      reads.mockRestore();
    }
    expect(w.errors).toEqual([]);
  });
});
