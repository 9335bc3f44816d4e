import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The shape of the sources: no import cycles anywhere in src/ (type-only imports included: a cycle of
 * types still ties two modules so that neither can be read or tested alone), no module of the App
 * (src/github) grows past 400 lines, and the core imports no adapter.
 */

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative imports and re-exports of a module, as source paths. */
function importsOf(file: string, text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g)) {
    found.push(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  }
  return found;
}

/** Every cycle's modules, found by a depth-first search (each cycle reported once, from where it was entered). */
function cycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') found.push(stack.slice(stack.indexOf(m)).map((f) => relative(SRC, f)));
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe('the shape of src/', () => {
  it('has no import cycles', async () => {
    const graph = new Map<string, string[]>();
    for (const f of await sources(SRC)) graph.set(f, importsOf(f, await readFile(f, 'utf8')));
    expect(graph.size).toBeGreaterThan(50);
    expect(cycles(graph)).toEqual([]);
  });

  it('keeps every module of the App under 400 lines', async () => {
    const long: string[] = [];
    for (const f of await sources(join(SRC, 'github'))) {
      const lines = (await readFile(f, 'utf8')).split('\n').length;
      if (lines > 400) long.push(`${relative(SRC, f)}: ${lines} lines`);
    }
    expect(long).toEqual([]);
  });

  it('keeps the core to itself: src/plan, src/engine and src/problems import no adapter (config, git, runs, executors, …)', async () => {
    const allowed = ['plan', 'engine', 'problems', 'json', 'errors.ts', 'error-codes.ts'];
    const leaks: string[] = [];
    for (const layer of ['plan', 'engine', 'problems']) {
      for (const f of await sources(join(SRC, layer))) {
        for (const target of importsOf(f, await readFile(f, 'utf8'))) {
          const top = relative(SRC, target).split('/')[0]!;
          if (!allowed.includes(top)) leaks.push(`${relative(SRC, f)} imports ${relative(SRC, target)}`);
        }
      }
    }
    expect(leaks).toEqual([]);
  });
});
