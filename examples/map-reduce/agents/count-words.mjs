// map: count the words of shards/<shard>.txt into counts/<shard>.json (sorted keys, so output is stable).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const { shard } = JSON.parse(readFileSync(0, 'utf8'));
const words =
  readFileSync(`shards/${shard}.txt`, 'utf8')
    .toLowerCase()
    .match(/[a-z']+/g) ?? [];
const counts = {};
for (const w of words.sort()) counts[w] = (counts[w] ?? 0) + 1;
mkdirSync('counts', { recursive: true });
writeFileSync(`counts/${shard}.json`, `${JSON.stringify(counts, null, 2)}\n`);
console.log(`count-words: shard ${shard}: ${words.length} words, ${Object.keys(counts).length} distinct`);
