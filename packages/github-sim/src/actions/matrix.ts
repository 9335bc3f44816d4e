/**
 * `strategy.matrix`: the cartesian product of its axes, less the `exclude` entries, with the
 * `include` entries merged into every combination whose original values they do not overwrite
 * (or, when they fit none, added as combinations of their own), as GitHub expands it.
 */

/** GitHub's cap on the jobs one matrix may make. */
export const MAX_MATRIX_JOBS = 256;

export class MatrixError extends Error {}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The combinations of a job's matrix (each a `matrix` context), its expressions already evaluated. */
export function expandMatrix(matrix: unknown): Record<string, unknown>[] {
  if (matrix === null || typeof matrix !== 'object' || Array.isArray(matrix)) throw new MatrixError('strategy.matrix must be a mapping of axes');
  const { include, exclude, ...axes } = matrix as Record<string, unknown>;
  const list = (v: unknown, what: string): Record<string, unknown>[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((e) => e === null || typeof e !== 'object' || Array.isArray(e)))
      throw new MatrixError(`strategy.matrix.${what} must be a list of mappings`);
    return v as Record<string, unknown>[];
  };
  let combos: Record<string, unknown>[] = Object.keys(axes).length > 0 ? [{}] : [];
  for (const [axis, values] of Object.entries(axes)) {
    if (!Array.isArray(values) || values.length === 0) throw new MatrixError(`strategy.matrix.${axis} must be a non-empty list`);
    combos = combos.flatMap((c) => values.map((v: unknown) => ({ ...c, [axis]: v })));
  }
  const excluded = list(exclude, 'exclude');
  combos = combos.filter((c) => !excluded.some((e) => Object.entries(e).every(([k, v]) => same(c[k], v))));
  const base = combos.map((c) => ({ original: { ...c }, value: c }));
  const added: Record<string, unknown>[] = [];
  for (const inc of list(include, 'include')) {
    let fitted = false;
    for (const c of base) {
      if (Object.entries(inc).every(([k, v]) => !(k in c.original) || same(c.original[k], v))) {
        Object.assign(c.value, inc);
        fitted = true;
      }
    }
    if (!fitted) added.push({ ...inc });
  }
  const out = [...base.map((c) => c.value), ...added];
  if (out.length === 0) throw new MatrixError('strategy.matrix makes no job (every combination is excluded)');
  if (out.length > MAX_MATRIX_JOBS) throw new MatrixError(`strategy.matrix makes ${out.length} jobs; GitHub allows at most ${MAX_MATRIX_JOBS}`);
  return out;
}

/** The name GitHub gives a matrix job when the job names none: `key (v1, v2)`. */
export function matrixJobName(key: string, combo: Record<string, unknown>): string {
  const parts = Object.values(combo).map((v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)));
  return `${key} (${parts.join(', ')})`;
}
