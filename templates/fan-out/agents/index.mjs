// index: INDEX.md lists every note with its line count and first line (run after every tidy is done).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const rows = readdirSync('notes')
  .filter((f) => f.endsWith('.txt'))
  .sort()
  .map((f) => {
    const lines = readFileSync(`notes/${f}`, 'utf8').split('\n').filter(Boolean);
    return `| ${f} | ${lines.length} | ${lines[0] ?? ''} |`;
  });
writeFileSync('INDEX.md', ['# Notes', '', '| file | lines | first |', '| --- | ---: | --- |', ...rows].join('\n') + '\n');
console.log(`index: ${rows.length} notes`);
