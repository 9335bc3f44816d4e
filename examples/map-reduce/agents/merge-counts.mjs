// reduce: merge every counts/<n>.json into totals.json and list the five most frequent words.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const totals = {};
const files = readdirSync('counts')
  .filter((f) => /^\d+\.json$/.test(f))
  .sort();
for (const f of files) {
  for (const [w, n] of Object.entries(JSON.parse(readFileSync(`counts/${f}`, 'utf8')))) totals[w] = (totals[w] ?? 0) + n;
}
const sorted = Object.fromEntries(Object.entries(totals).sort(([a], [b]) => (a < b ? -1 : 1)));
writeFileSync('totals.json', `${JSON.stringify(sorted, null, 2)}\n`);
const top = Object.entries(totals)
  .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  .slice(0, 5);
console.log(`merge-counts: ${files.length} shards; top words: ${top.map(([w, n]) => `${w} ${n}`).join(', ')}`);
