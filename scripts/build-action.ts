/**
 * Bundles the Agora Action (src/action/main.ts and everything it imports) into action/dist/index.js, one
 * ESM file that a runner's Node 24 executes with no node_modules, plus action/dist/package.json marking it
 * ESM. The output is committed (an action is run from the repository as it is) and must be deterministic:
 * test/action/dist.test.ts rebuilds into a temporary directory and fails when the committed bytes differ.
 *
 *   npm run build:action            # writes action/dist/
 *   tsx scripts/build-action.ts DIR # writes DIR/ instead
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const ACTION_DIST = join(ROOT, 'action', 'dist');

/**
 * Some bundled CommonJS modules call `require` for Node's built-ins, and ssh2's bundled WebAssembly loader
 * (under dockerode) reads `__dirname`; an ES module has none of these of its own.
 */
const REQUIRE_SHIM = [
  "import { createRequire as __agoraCreateRequire } from 'node:module';",
  "import { fileURLToPath as __agoraFileURLToPath } from 'node:url';",
  "import { dirname as __agoraDirname } from 'node:path';",
  'const require = __agoraCreateRequire(import.meta.url);',
  'const __filename = __agoraFileURLToPath(import.meta.url);',
  'const __dirname = __agoraDirname(__filename);',
].join('\n');

export async function buildAction(outDir: string = ACTION_DIST): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ['src/action/main.ts'],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    outfile: join(outDir, 'index.js'),
    banner: { js: REQUIRE_SHIM },
    // dockerode (the docker target of `mode: run`) brings ssh2, whose native add-ons (sshcrypto, cpu-features)
    // are optional: it requires them inside try/catch and falls back to Node's crypto. Left out of the
    // bundle, the require fails at run time and the fallback is taken; the Action reaches the engine over
    // DOCKER_HOST's socket, never over ssh.
    external: ['*.node'],
    legalComments: 'eof',
    charset: 'utf8',
    logLevel: 'warning',
    write: true,
  });
  if (result.errors.length > 0) throw new Error(`esbuild failed: ${result.errors.map((e) => e.text).join('; ')}`);
  await writeFile(join(outDir, 'package.json'), `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ? resolve(process.argv[2]) : ACTION_DIST;
  await buildAction(out);
  console.error(`wrote ${join(out, 'index.js')}`);
}
