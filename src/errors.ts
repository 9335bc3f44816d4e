/**
 * Errors a user can cause. Each names the input, the problem and the fix; the CLI prints
 * `message` (and `hint`) without a stack trace and exits with `exitCode`.
 */
export class AgoraError extends Error {
  override readonly name: string = 'AgoraError';
  constructor(
    /** Stable, machine-readable code, e.g. `plan-invalid`, `run-not-found`. */
    readonly code: string,
    message: string,
    /** What the user can do about it. */
    readonly hint?: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
  }
}

/** One problem in a user-supplied document, located by JSON path (`$.items[2].depends_on[0]`). */
export interface Problem {
  path: string;
  message: string;
}

export class InvalidInputError extends AgoraError {
  override readonly name: string = 'InvalidInputError';
  constructor(
    code: string,
    /** What was being read: a file path, `plan.json`, `refs/agora/inbox/x`. */
    readonly source: string,
    readonly problems: Problem[],
    hint?: string,
  ) {
    super(
      code,
      `${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` +
        problems.map((p) => `  ${p.path}: ${p.message}`).join('\n'),
      hint,
    );
  }
}

export function isAgoraError(e: unknown): e is AgoraError {
  return e instanceof AgoraError;
}
