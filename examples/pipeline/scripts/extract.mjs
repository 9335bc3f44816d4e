// extract: input/sales.txt (space separated) -> data/sales.csv with a header.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const rows = readFileSync('input/sales.txt', 'utf8')
  .trim()
  .split('\n')
  .map((l) => l.trim().split(/\s+/));
for (const [i, r] of rows.entries()) {
  if (r.length !== 5) {
    console.error(`extract: input/sales.txt line ${i + 1}: expected 5 fields, got ${r.length}`);
    process.exit(1);
  }
}
mkdirSync('data', { recursive: true });
writeFileSync('data/sales.csv', ['date,region,product,units,price', ...rows.map((r) => r.join(','))].join('\n') + '\n');
console.log(`extract: ${rows.length} rows`);
