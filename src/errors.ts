import { ERROR_CODES, type ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

export interface AgoraErrorOptions {
  /** The CLI's exit status; by default the one `ERROR_CODES` gives the code. */
  exitCode?: number;
  /** The error that led to this one, kept for `AGORA_DEBUG` and for callers that look deeper. */
  cause?: unknown;
}

/**
 * Errors a user can cause. Each names the input, the problem and the fix; the CLI prints
 * `message` (and `hint`) without a stack trace and exits with `exitCode`. The code is one of
 * `ERROR_CODES` (src/error-codes.ts), which docs/errors.md lists.
 */
export class AgoraError extends Error {
  override readonly name: string = 'AgoraError';
  readonly exitCode: number;
  constructor(
    /** Stable, machine-readable code, e.g. `plan-invalid`, `run-not-found`. */
    readonly code: ErrorCode,
    message: string,
    /** What the user can do about it. */
    readonly hint?: string,
    options: AgoraErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? ERROR_CODES[code].exitCode;
  }
}

/** The message of anything thrown: an Error's message, else its text. Replaces `(e as Error).message`. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
  return String(e);
}

/** For logs of what should not happen: the stack of an Error, else the message of whatever was thrown (even `null`). */
export function errorStack(e: unknown): string {
  return e instanceof Error && e.stack ? e.stack : errorMessage(e);
}

/** One problem in a user-supplied document, located by JSON path (`$.items[2].depends_on[0]`). */
export interface Problem {
  path: string;
  message: string;
}

export class InvalidInputError extends AgoraError {
  override readonly name: string = 'InvalidInputError';
  constructor(
    code: ErrorCode,
    /** What was being read: a file path, `plan.json`, `refs/agora/inbox/x`. */
    readonly source: string,
    readonly problems: Problem[],
    hint?: string,
  ) {
    super(
      code,
      `${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` + problems.map((p) => `  ${p.path}: ${p.message}`).join('\n'),
      hint,
    );
  }
}

export function isAgoraError(e: unknown): e is AgoraError {
  return e instanceof AgoraError;
}
