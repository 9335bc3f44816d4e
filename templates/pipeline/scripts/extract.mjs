// extract: input/readings.log ("<time> <room> <celsius>" per line) -> build/readings.csv with a header.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const rows = readFileSync('input/readings.log', 'utf8')
  .trim()
  .split('\n')
  .map((l) => l.trim().split(/\s+/));
const bad = rows.findIndex((r) => r.length !== 3 || Number.isNaN(Number(r[2])));
if (bad >= 0) {
  console.error(`extract: input/readings.log line ${bad + 1}: expected "<time> <room> <celsius>"`);
  process.exit(1);
}
mkdirSync('build', { recursive: true });
writeFileSync('build/readings.csv', ['time,room,celsius', ...rows.map((r) => r.join(','))].join('\n') + '\n');
console.log(`extract: ${rows.length} readings`);
