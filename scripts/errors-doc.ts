/**
 * Writes docs/errors.md from ERROR_CODES (src/error-codes.ts): every code an Agora error can carry, its
 * meaning, its fix and the CLI's exit status. `npm run docs:errors`; test/errors/errors-doc.test.ts fails
 * when the file in the repository differs from what this renders.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_AREAS, ERROR_CODES, type ErrorArea, type ErrorCodeInfo } from '../src/error-codes.js';

export const ERRORS_DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url));

export function renderErrorsDoc(): string {
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated from src/error-codes.ts (its entries are in src/error-codes/) by `npm run docs:errors`; edit those files, not this one. -->',
    '',
    'Every error a user can cause is an `AgoraError` with one of these codes. The CLI prints it as',
    '`agora: <message>` and `hint: <what to do here>`, without a stack trace, and exits with the status',
    'below. Programs using Agora as a library read `error.code`; the code is stable, the message is not.',
    '`AGORA_DEBUG=1` also prints the error that caused it, when there is one. An error that is not an',
    '`AgoraError` is a bug: the CLI says so and exits 70 ([cli.md](cli.md#exit-codes-and-errors)).',
    '',
  ];
  const byArea = new Map<ErrorArea, Array<[string, ErrorCodeInfo]>>();
  for (const [code, info] of Object.entries(ERROR_CODES) as Array<[string, ErrorCodeInfo]>) {
    byArea.set(info.area, [...(byArea.get(info.area) ?? []), [code, info]]);
  }
  for (const [area, title] of Object.entries(ERROR_AREAS) as Array<[ErrorArea, string]>) {
    const rows = byArea.get(area);
    if (!rows) continue;
    lines.push(`## ${title}`, '', '| code | meaning | fix | exit |', '| --- | --- | --- | ---: |');
    for (const [code, info] of rows.sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(`| \`${code}\` | ${cell(info.meaning)} | ${cell(info.fix)} | ${info.exitCode} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(ERRORS_DOC, renderErrorsDoc());
  process.stdout.write(`wrote ${ERRORS_DOC}\n`);
}
