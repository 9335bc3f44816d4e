// map: the amounts in shards/<shard>.csv ("<customer>,<amount>" per line) summed per customer into partials/<shard>.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const { shard } = JSON.parse(readFileSync(0, 'utf8'));
const sums = {};
for (const line of readFileSync(`shards/${shard}.csv`, 'utf8').trim().split('\n')) {
  const [customer, amount] = line.split(',');
  sums[customer] = (sums[customer] ?? 0) + Number(amount);
}
const sorted = Object.fromEntries(Object.entries(sums).sort(([a], [b]) => (a < b ? -1 : 1)));
mkdirSync('partials', { recursive: true });
writeFileSync(`partials/${shard}.json`, `${JSON.stringify(sorted, null, 2)}\n`);
console.log(`mapper: shard ${shard}: ${Object.keys(sorted).length} customers`);
