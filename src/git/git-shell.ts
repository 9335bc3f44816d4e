/**
 * Long-lived `/bin/sh` processes that run git step sequences for {@link runGitSequence} (issue 16,
 * Must-have 2). Starting a child from a large Node process is expensive (fork copies its page tables,
 * on the event loop: about 60 ms a start on a loaded 2-core machine, against 14 ms for the same start from
 * a shell), and a workspace needs two git sequences per item. A sequence sent here runs in a subshell of
 * an idle shell of this pool, so the git processes are forked from a small shell instead of from Node.
 *
 * What holds for a sequence run by `execFile` holds here too: the script is the same text, the same `-c`
 * settings reach git as "$@", and the environment is the same hermetic one (`gitEnvironment`), set
 * whole in the subshell (variables of the shell's own environment that the request lacks are unset). A
 * request travels as a file in a private (0700) directory: the shell reads one path a line, sources
 * the file in a subshell with stdout and stderr going to files beside it, and answers with the exit
 * status; the files are removed when the answer (or the shell's death) is seen. A request file holds
 * only the variables that differ from the shell's own environment. Requests carrying secrets are never
 * sent here (git-cli.ts keeps them on `execFile`), so no secret is written to disk.
 *
 * A shell runs one request at a time; the pool starts another when all are busy and keeps at most
 * {@link MAX_IDLE} idle ones, which do not keep Node's event loop alive. When Node exits, a shell's stdin
 * closes and its loop ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';

/** How a sequence ended: the shell's exit status of the subshell and what it wrote. */
export interface ShellResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** One sequence to run: the script (fixed text plus quoted words), its "$@", its cwd and whole environment. */
export interface ShellRequest {
  script: string;
  args: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** Idle shells kept for the next sequences; more are closed when they finish. */
const MAX_IDLE = 4;

/** The shell's loop (fixed text): source each request file in a subshell, answer with its status. */
const LOOP = [
  'while IFS= read -r agora_request; do',
  '  ( . "$agora_request" ) < /dev/null > "$agora_request.out" 2> "$agora_request.err"',
  '  printf \'%s\\n\' "$?"',
  'done',
].join('\n');

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One word for sh: single-quoted, with embedded single quotes closed and escaped. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

class Shell {
  private readonly child: ChildProcess;
  /** The environment the shell was started with; a request file holds only what differs from it. */
  private readonly startEnv: ReadonlyMap<string, string>;
  private buffered = '';
  private current: { file: string; done: (r: ShellResult) => void; fail: (e: Error) => void } | null = null;
  exited = false;

  constructor(
    env: NodeJS.ProcessEnv,
    private readonly onIdle: (shell: Shell) => void,
    private readonly onExit: (shell: Shell) => void,
  ) {
    this.startEnv = new Map(Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [[k, v] as const])));
    this.child = spawn('/bin/sh', ['-c', LOOP, 'agora-git-shell'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    this.child.stdin!.on('error', () => {}); // a dead shell is reported by 'exit'
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.answer(chunk));
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      const pending = this.current;
      this.current = null;
      const error = new Error(`the git shell ${this.child.pid ?? '?'} exited (${signal ?? `code ${code}`}) while running a sequence`);
      if (pending) {
        try {
          removeRequest(pending.file);
        } catch {
          // left in the private directory, which goes when the process exits
        }
        pending.fail(error);
      }
      this.onExit(this);
    });
    this.child.on('error', (e) => {
      this.exited = true;
      const pending = this.current;
      this.current = null;
      pending?.fail(e);
      this.onExit(this);
    });
    this.idle();
  }

  run(file: string, request: ShellRequest): Promise<ShellResult> {
    return new Promise((done, fail) => {
      this.current = { file, done, fail };
      this.busy();
      try {
        // A request, its answer and their removal are a few small files: synchronous calls, cheaper than the thread pool's round trips.
        writeFileSync(file, requestText(request, this.startEnv), { mode: 0o600 });
      } catch (e) {
        this.current = null;
        this.idle();
        fail(e as Error);
        this.onIdle(this);
        return;
      }
      this.child.stdin!.write(`${file}\n`);
    });
  }

  close(): void {
    this.child.stdin!.end();
  }

  private answer(chunk: string): void {
    this.buffered += chunk;
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const pending = this.current;
      if (!pending) continue;
      this.current = null;
      const status = Number(line);
      let output: { stdout: string; stderr: string };
      try {
        output = collect(pending.file);
      } catch (e) {
        this.idle();
        pending.fail(e as Error);
        this.onIdle(this);
        continue;
      }
      this.idle();
      pending.done({ status, ...output });
      this.onIdle(this);
    }
  }

  /** An idle shell does not keep the event loop alive. */
  private idle(): void {
    this.child.unref();
    (this.child.stdout as Socket).unref();
    (this.child.stdin as unknown as Socket).unref();
  }

  private busy(): void {
    this.child.ref();
    (this.child.stdout as Socket).ref();
    (this.child.stdin as unknown as Socket).ref();
  }
}

/** What a request file says: the environment made whole, the directory, "$@", then the script. */
function requestText(r: ShellRequest, startEnv: ReadonlyMap<string, string>): string {
  const lines: string[] = [];
  const gone = [...startEnv.keys()].filter((k) => NAME.test(k) && r.env[k] === undefined);
  if (gone.length > 0) lines.push(`unset ${gone.join(' ')}`);
  // Only what differs from the shell's own environment (the index file, Agora's paths) is written down.
  for (const [k, v] of Object.entries(r.env)) if (v !== undefined && NAME.test(k) && startEnv.get(k) !== v) lines.push(`export ${k}=${shellQuote(v)}`);
  lines.push(`cd -- ${shellQuote(r.cwd)} || exit 1`);
  lines.push(`set -- ${r.args.map(shellQuote).join(' ')}`);
  lines.push(r.script);
  return `${lines.join('\n')}\n`;
}

function collect(file: string): { stdout: string; stderr: string } {
  try {
    return { stdout: readFileSync(`${file}.out`, 'utf8'), stderr: readFileSync(`${file}.err`, 'utf8') };
  } finally {
    removeRequest(file);
  }
}

function removeRequest(file: string): void {
  for (const f of [file, `${file}.out`, `${file}.err`]) rmSync(f, { force: true });
}

/** The shells of this process. */
class ShellPool {
  private readonly idle: Shell[] = [];
  private dir: Promise<string> | null = null;
  private requests = 0;
  /** Shells started so far (for tests and benchmarks: process starts are what this pool saves). */
  started = 0;

  async run(request: ShellRequest): Promise<ShellResult> {
    this.dir ??= mkdtemp(join(tmpdir(), 'agora-git-shell-')).then((dir) => {
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      return dir;
    });
    const file = join(await this.dir, `r${process.pid}-${(this.requests += 1)}`);
    let shell = this.idle.pop();
    while (shell?.exited) shell = this.idle.pop();
    if (!shell) {
      this.started += 1;
      shell = new Shell(
        request.env,
        (s) => this.release(s),
        (s) => this.forget(s),
      );
    }
    return shell.run(file, request);
  }

  private release(shell: Shell): void {
    if (shell.exited) return;
    if (this.idle.length >= MAX_IDLE) shell.close();
    else this.idle.push(shell);
  }

  private forget(shell: Shell): void {
    const i = this.idle.indexOf(shell);
    if (i >= 0) this.idle.splice(i, 1);
  }
}

const pool = new ShellPool();

/** Runs `request` in one of this process's long-lived shells. */
export function runInShell(request: ShellRequest): Promise<ShellResult> {
  return pool.run(request);
}

/** How many shells this process has started (a test's or a benchmark's count of process starts). */
export function shellsStarted(): number {
  return pool.started;
}
