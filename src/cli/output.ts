/** Where the CLI's verbs print: stdout and stderr, and whether stdout is a terminal. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
  /** True when stdout is a terminal (live table instead of JSON lines). */
  tty: boolean;
}

export const stdio: Output = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  tty: Boolean(process.stdout.isTTY),
};
