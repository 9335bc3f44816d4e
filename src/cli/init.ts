import { relative, resolve } from 'node:path';
import { initProject } from '../init/init.js';
import type { Output } from './output.js';

/** `agora init <dir> --template <name>`: writes the project, then says what to run in it. */
export async function initVerb(dir: string, opts: { template: string }, io: Output): Promise<number> {
  const target = resolve(process.cwd(), dir);
  const { files, commit } = await initProject(target, opts.template);
  const shown = relative(process.cwd(), target) || '.';
  io.out(`created ${shown} from the ${opts.template} template (commit ${commit.slice(0, 12)} on main):`);
  for (const file of files) io.out(`  ${file}`);
  io.out(`\nnext:\n  cd ${shown}\n  agora test                 # the fixture: real engine, mocked workers\n  agora orch run plan.json   # the real run`);
  return 0;
}
