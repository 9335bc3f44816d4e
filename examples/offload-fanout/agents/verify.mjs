// A deterministic stand-in for a verifying agent: checks the result of the edits, changes nothing.
// Fails (exit 1) unless every fixture file was reviewed and no `var` declaration is left.
import { readdirSync, readFileSync } from 'node:fs';

const problems = [];
const files = readdirSync('fixture')
  .filter((f) => f.endsWith('.ts'))
  .sort();
for (const file of files) {
  const source = readFileSync(`fixture/${file}`, 'utf8');
  if (/\bvar\s/.test(source)) problems.push(`fixture/${file}: still declares with var`);
  if (!source.includes('// reviewed-by: agora code-edit')) problems.push(`fixture/${file}: not reviewed`);
}
for (const p of problems) console.error(`verify: ${p}`);
if (problems.length > 0) process.exit(1);
console.log(`verify: ${files.length} files checked, all reviewed, no var left`);
