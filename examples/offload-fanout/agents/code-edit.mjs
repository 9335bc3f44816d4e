// A deterministic stand-in for a code-editing agent. Input (stdin, JSON): { "file": "alpha.ts" }.
// Edits fixture/<file> in the workspace: every `var` that is never reassigned becomes `const`, every
// other `var` becomes `let`, and the file records that it was reviewed.
import { readFileSync, writeFileSync } from 'node:fs';

const input = JSON.parse(readFileSync(0, 'utf8') || '{}');
if (typeof input.file !== 'string' || input.file.includes('/')) {
  console.error(`code-edit: workerInput.file must be a file name under fixture/, got ${JSON.stringify(input.file)}`);
  process.exit(2);
}
const path = `fixture/${input.file}`;
let source = readFileSync(path, 'utf8');
const declared = [...source.matchAll(/\bvar\s+([A-Za-z_$][\w$]*)/g)].map((m) => m[1]);
for (const name of declared) {
  const reassigned = new RegExp(`(^|[^\\w$.])${name}\\s*(=[^=>]|\\+=|-=|\\+\\+|--)`, 'm');
  const afterDeclaration = source.replace(new RegExp(`\\bvar\\s+${name}\\s*=`), '');
  const keyword = reassigned.test(afterDeclaration) ? 'let' : 'const';
  source = source.replace(new RegExp(`\\bvar\\s+${name}\\b`), `${keyword} ${name}`);
  console.log(`${path}: var ${name} -> ${keyword} ${name}`);
}
if (!source.includes('// reviewed-by: agora code-edit')) source += '// reviewed-by: agora code-edit\n';
writeFileSync(path, source);
console.log(`${path}: ${declared.length} declaration(s) rewritten`);
