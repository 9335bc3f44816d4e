export interface ErrorCodeInfo {
  /** What went wrong, in one sentence. */
  readonly meaning: string;
  /** What the user does about it, in general; each error's own hint says it for the case at hand. */
  readonly fix: string;
  /** The CLI's exit status when this error ends a command. */
  readonly exitCode: number;
  /** Where it comes from, for the generated table. */
  readonly area: ErrorArea;
}

export type ErrorArea = 'plan' | 'config' | 'run' | 'git' | 'worker' | 'audit' | 'cli' | 'github' | 'action';

export const ERROR_AREAS: Readonly<Record<ErrorArea, string>> = {
  plan: 'Plans',
  config: 'Configuration and secrets',
  run: 'Runs',
  git: 'The repository',
  worker: 'Workers and workspaces',
  audit: 'Audit, signing and verification',
  cli: 'Command-line options',
  github: 'The GitHub App',
  action: 'The GitHub Action',
};

/** The exit status of an error a user caused (bad input, a refused request). */
export const USER = 1;
/** Bad command-line usage (docs/cli.md): an option value that cannot be read, options that do not go together; as commander's own refusals. */
export const USAGE = 2;
