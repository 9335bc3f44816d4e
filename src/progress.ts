/**
 * How long work tells whoever waits how far it got: a named phase with an optional total, then steps.
 * Pure interface: the CLI draws it on a terminal (src/cli/progress-line.ts); everything else passes
 * SILENT. Reporting never changes what the work does.
 */
export interface Progress {
  /** A new phase: `label` says what is counted; `total` when it is known up front. */
  phase(label: string, total?: number): void;
  /** `by` more steps of the current phase done. */
  advance(by?: number): void;
}

export const SILENT: Progress = { phase() {}, advance() {} };
