// summarize: data/sales.csv -> reports/revenue.md, revenue per region, largest first.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const [, ...lines] = readFileSync('data/sales.csv', 'utf8').trim().split('\n');
const revenue = new Map();
for (const line of lines) {
  const [, region, , units, price] = line.split(',');
  revenue.set(region, (revenue.get(region) ?? 0) + Number(units) * Number(price));
}
const sorted = [...revenue].sort((a, b) => b[1] - a[1]);
mkdirSync('reports', { recursive: true });
writeFileSync(
  'reports/revenue.md',
  ['# Revenue by region', '', '| region | revenue |', '| --- | ---: |', ...sorted.map(([r, v]) => `| ${r} | ${v.toFixed(2)} |`)].join('\n') + '\n',
);
console.log(`summarize: ${sorted.length} regions`);
