import { AUDIT_ERRORS } from './error-codes/audit.js';
import { CONFIG_ERRORS } from './error-codes/config.js';
import { GIT_ERRORS } from './error-codes/git.js';
import { GITHUB_ERRORS } from './error-codes/github.js';
import type { ErrorCodeInfo } from './error-codes/info.js';
import { PLAN_ERRORS } from './error-codes/plan.js';
import { RUN_ERRORS } from './error-codes/run.js';
import { TESTING_ERRORS } from './error-codes/testing.js';

export { ERROR_AREAS, type ErrorArea, type ErrorCodeInfo } from './error-codes/info.js';

/**
 * Every code an {@link AgoraError} can carry, with what it means, what a user does about it and the
 * exit code the CLI ends with. This table is the one list: `AgoraError`'s constructor accepts only its
 * keys, and `docs/errors.md` is generated from it (`npm run docs:errors`; a test fails when the file is
 * stale). Its entries are kept by area in `src/error-codes/`, in the order docs/errors.md lists them.
 */
const PARTS = [PLAN_ERRORS, TESTING_ERRORS, CONFIG_ERRORS, RUN_ERRORS, GIT_ERRORS, AUDIT_ERRORS, GITHUB_ERRORS] as const;

export const ERROR_CODES = {
  ...PLAN_ERRORS,
  ...TESTING_ERRORS,
  ...CONFIG_ERRORS,
  ...RUN_ERRORS,
  ...GIT_ERRORS,
  ...AUDIT_ERRORS,
  ...GITHUB_ERRORS,
} as const satisfies Readonly<Record<string, ErrorCodeInfo>>;

// A code in two areas would be one entry here, the later silently replacing the earlier: refused at load.
if (Object.keys(ERROR_CODES).length !== PARTS.reduce((n, part) => n + Object.keys(part).length, 0)) {
  const seen = new Set<string>();
  const twice = PARTS.flatMap((part) => Object.keys(part)).filter((code) => seen.has(code) || !seen.add(code));
  throw new Error(`error codes defined in two areas of src/error-codes/: ${twice.join(', ')}`);
}

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
