// tidy: one note file in place. Trailing spaces go, runs of blank lines become one, lines are sorted.
// Its input ({"file": …}) arrives on stdin; it may write only the file its item locks.
import { readFileSync, writeFileSync } from 'node:fs';

const { file } = JSON.parse(readFileSync(0, 'utf8'));
const lines = readFileSync(file, 'utf8')
  .split('\n')
  .map((l) => l.trimEnd())
  .filter((l) => l !== '');
lines.sort((a, b) => a.localeCompare(b));
writeFileSync(file, `${lines.join('\n')}\n`);
console.log(`tidy: ${file}: ${lines.length} lines`);
