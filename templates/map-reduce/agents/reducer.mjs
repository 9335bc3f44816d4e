// reduce: every partials/<n>.json summed into result.json, customers in name order.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const totals = {};
const parts = readdirSync('partials')
  .filter((f) => /^\d+\.json$/.test(f))
  .sort();
for (const f of parts) {
  for (const [customer, amount] of Object.entries(JSON.parse(readFileSync(`partials/${f}`, 'utf8')))) {
    totals[customer] = (totals[customer] ?? 0) + amount;
  }
}
const sorted = Object.fromEntries(Object.entries(totals).sort(([a], [b]) => (a < b ? -1 : 1)));
writeFileSync('result.json', `${JSON.stringify(sorted, null, 2)}\n`);
console.log(`reducer: ${parts.length} partials, ${Object.keys(sorted).length} customers`);
