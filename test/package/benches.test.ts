import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BENCH_PLUMBING, BENCHES } from '../../bench/benches.js';

const BENCH_DIR = fileURLToPath(new URL('../../bench/', import.meta.url));

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [relative(BENCH_DIR, join(dir, e.name))] : [],
  );
}

describe('npm run bench', () => {
  it('runs every benchmark in bench/, and names only files that exist', () => {
    const benchmarks = tsFiles(BENCH_DIR)
      .filter((f) => !(BENCH_PLUMBING as readonly string[]).includes(f))
      .sort();
    expect([...BENCHES].sort()).toEqual(benchmarks);
  });
});
