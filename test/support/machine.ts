/**
 * How slow this machine is, measured when the suite starts (vitest.config.ts) and again, more briefly,
 * before each test file (setup-machine.ts), so that the bounds tests wait within grow on a slower or busier
 * machine — including one that gets busy halfway through the run — instead of failing there.
 *
 * The probe is what the suite mostly does, as many at once as vitest runs test files (two): start
 * short-lived processes (`git --version`) and hash a little. Two chains of 25 took 550 ms on the quiet
 * 2-core machine the bounds were set on (where `make -j2` of 200 no-op rules takes 0.5 s); the factor is
 * this machine's time over that, never below 1. `AGORA_TEST_MACHINE_FACTOR` overrides it (e.g. 3, to see
 * how the suite behaves with more room).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';

/** The probe's time on the reference machine (ms). */
export const REFERENCE_PROBE_MS = 550;
const CHAINS = 2;
const PER_CHAIN = 25;

/** The factor from the full probe, or from a probe `fraction` as long (a brief look, less exact). */
export async function measureMachineFactor(env: NodeJS.ProcessEnv = process.env, fraction = 1): Promise<number> {
  const forced = Number(env.AGORA_TEST_MACHINE_FACTOR);
  if (Number.isFinite(forced) && forced > 0) return forced;
  const perChain = Math.max(1, Math.round(PER_CHAIN * fraction));
  const start = performance.now();
  await Promise.all(Array.from({ length: CHAINS }, () => chain(perChain)));
  const factor = (performance.now() - start) / ((REFERENCE_PROBE_MS * perChain) / PER_CHAIN);
  return Math.max(1, Math.round(factor * 10) / 10);
}

async function chain(n: number): Promise<void> {
  for (let i = 0; i < n; i += 1) {
    await new Promise<void>((resolve, reject) =>
      spawn('git', ['--version'], { stdio: 'ignore' })
        .on('error', reject)
        .on('exit', () => resolve()),
    );
    createHash('sha256')
      .update(Buffer.alloc(1 << 20))
      .digest();
  }
}
