// report: build/readings.csv -> build/report.md, the mean temperature per room, warmest first.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const [, ...lines] = readFileSync('build/readings.csv', 'utf8').trim().split('\n');
const rooms = new Map();
for (const line of lines) {
  const [, room, celsius] = line.split(',');
  const r = rooms.get(room) ?? { sum: 0, n: 0 };
  rooms.set(room, { sum: r.sum + Number(celsius), n: r.n + 1 });
}
const means = [...rooms].map(([room, { sum, n }]) => [room, sum / n]).sort((a, b) => b[1] - a[1]);
mkdirSync('build', { recursive: true });
writeFileSync(
  'build/report.md',
  ['# Mean temperature by room', '', '| room | °C |', '| --- | ---: |', ...means.map(([room, m]) => `| ${room} | ${m.toFixed(1)} |`)].join('\n') + '\n',
);
console.log(`report: ${means.length} rooms`);
