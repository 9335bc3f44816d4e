import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { errorMessage, errorStack, isAgoraError } from '../errors.js';
import { finishObjectDatabases } from '../git/object-database.js';
import { registerAppCommand } from '../github/command.js';
import { TEMPLATES } from '../init/init.js';
import { callVerb } from './call.js';
import { registerAuditCommands } from './audit.js';
import { terminalSafe } from './terminal-text.js';
import { gcVerb } from './gc.js';
import { initVerb } from './init.js';
import { testVerb } from './test.js';
import { reportVerb } from './report.js';
import { cancelVerb, retryVerb, runVerb, submitVerb, validateVerb } from './orch.js';
import { serveVerb } from './serving.js';
import { logsVerb, statusVerb, watchVerb } from './orch-read.js';
import { stdio, type Output } from './output.js';
import { runIdArgument } from './run-id-argument.js';

/** The `agora` command line. Thin: parse, call a verb, print a user error without a stack trace. */

/** Collects a repeatable option's values. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The run parameters `run` and `submit` take (docs/cli.md). */
function paramOptions(c: Command): Command {
  return c
    .option('--data <key=value>', 'a run parameter, read by items from the JSON file $AGORA_PARAMS (repeatable; wins over --data-file)', collect)
    .option('--data-file <file>', 'run parameters from a JSON object of strings, numbers and booleans')
    .option('--secret-data <key=value>', 'a run parameter kept out of the repository and redacted like a secret (repeatable)', collect);
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function buildProgram(): Command {
  const program = new Command('agora')
    .description('git-native orchestrator: plans run as DAGs, results live in git')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const orch = program.command('orch').description('run plans on a local git repository');
  const common = (c: Command) =>
    c
      .option('--repo <dir>', 'the git repository (default: the current directory)')
      .option('--config <file>', 'the config module (default: ./agora.config.mjs if present)');

  common(orch.command('validate <plan>').description('check a plan; every problem with its JSON path')).action(async (plan: string, o) =>
    setExit(await validateVerb(plan, o, stdio)),
  );
  common(
    paramOptions(orch.command('run <plan>'))
      .description('submit and serve until the run ends; exit 0 only if every item is done')
      .option('--apply', "fast-forward the current branch onto the run's integration head when done")
      .option('--base <rev>', 'the commit the run starts from (default: HEAD)')
      .option('--queue <name>', "override the plan's queue")
      .option('--poll-ms <ms>', 'how often to look for changes', positiveInt)
      .option('--json', 'JSON lines even on a terminal (they are the default when stdout is not one)'),
  ).action(async (plan: string, o) => setExit(await runVerb(plan, o, outputFor(o))));
  common(
    orch.command('serve').description('serve submitted runs until SIGINT/SIGTERM').option('--poll-ms <ms>', 'how often to look for submissions', positiveInt),
  ).action(async (o) => setExit(await serveVerb(o, stdio)));
  common(
    paramOptions(orch.command('submit <plan>'))
      .description('hand a plan to serve; prints the run id')
      .option('--base <rev>', 'the commit the run starts from (default: HEAD)')
      .option('--queue <name>', "override the plan's queue"),
  ).action(async (plan: string, o) => {
    await submitVerb(plan, o, stdio);
  });
  common(
    orch
      .command('watch')
      .argument('<run>', 'the run id', runIdArgument)
      .description('a live table on a terminal, else one JSON line per status update, until the run ends')
      .option('--json', 'JSON lines even on a terminal'),
  ).action(async (run: string, o) => setExit(await watchVerb(run, o, outputFor(o))));
  common(
    orch
      .command('status')
      .argument('[run]', 'the run id', runIdArgument)
      .description('the run and every item as JSON (all runs without an id)')
      .option('--calls', "with a run: every item's child attempts (its calls to dependencies), from the audit log's call entries"),
  ).action(async (run: string | undefined, o) => setExit(await statusVerb(run, o, stdio)));
  common(
    orch
      .command('cancel')
      .argument('<run>', 'the run id', runIdArgument)
      .description('cancel a run; serve stops its workers')
      .option('--reason <text>', 'recorded in the audit log'),
  ).action(async (run: string, o) => setExit(await cancelVerb(run, o, stdio)));
  common(
    orch
      .command('retry')
      .argument('<run>', 'the run id', runIdArgument)
      .argument('[item]', 'the item id')
      .description('run a failed or cancelled item again, or with --failed every failed item (and the items skipped because of them)')
      .option('--failed', 'retry every failed item of the run, in one step')
      .option('--reason <text>', 'recorded in the audit log'),
  ).action(async (run: string, item: string | undefined, o) => setExit(await retryVerb(run, item, o, stdio)));
  common(
    orch
      .command('logs')
      .argument('<run>', 'the run id', runIdArgument)
      .argument('<item>', 'the item id')
      .description("an item's log (the last attempt unless --attempt), its control characters shown as U+FFFD unless --raw")
      .option('--attempt <n>', 'which attempt', positiveInt)
      .option('--raw', 'the log as kept, control characters included (for a file or a program: it can drive a terminal)'),
  ).action(async (run: string, item: string, o) => setExit(await logsVerb(run, item, o, stdio)));
  common(
    orch
      .command('report')
      .argument('<run>', 'the run id', runIdArgument)
      .description('the run as one self-contained HTML page: DAG, timeline and lock waits, patches, logs, audit verdict')
      .option('--out <file>', 'where to write it (default: <run>.html; missing directories are created)'),
  ).action(async (run: string, o) => setExit(await reportVerb(run, o, stdio)));
  common(
    orch
      .command('gc')
      .description("remove finished runs' refs older than an age, keeping each run's audit bundle elsewhere (anchors stay)")
      .requiredOption('--older-than <age>', 'prune runs that finished longer ago than this: 30d, 12h, 90m, 2w')
      .option('--bundle-dir <dir>', "write each pruned run's audit bundle here (<run>.audit.json) before removing it")
      .option('--discard-bundles', 'keep no bundle file: only the anchored Merkle root stays in the repository')
      .option(
        '--remote <name|url>',
        "prune a remote repository's runs (token in GITHUB_TOKEN); the removals are pushed atomically, each leased on the value fetched",
      )
      .option('--bundles-in-releases', 'with --remote: prune a run only when the release the App published for it holds its bundle, with the same Merkle root')
      .option('--dry-run', 'report what would be pruned; change nothing'),
  ).action(async (o) => setExit(await gcVerb(o, stdio)));
  program
    .command('test [fixtures...]')
    .description('run plan fixtures (tests/fixture-*.json) with mocked workers through the real engine; exit 0 only if all pass')
    .option('--repo <dir>', 'the project whose files are the base (default: the repository around the current directory)')
    .option('--config <file>', 'the config module (default: the agora.config.mjs nearest each fixture)')
    .option('--verbose', 'print each mocked worker call')
    .action(async (fixtures: string[], o) => setExit(await testVerb(fixtures, o, stdio)));
  program
    .command('call <subagent>')
    .description("from a command worker: run a dependency of the worker's subagent as a child attempt and print its answer (docs/agents.md)")
    .option('--input <json>', 'the input: JSON, or - to read it from stdin', '{}')
    .action(async (subagent: string, o: { input: string }) => setExit(await callVerb(subagent, o, stdio)));
  program
    .command('init <dir>')
    .description('a working project from a template: plan, config, workers, README and a fixture, committed in a new git repository')
    .requiredOption('--template <name>', `one of: ${TEMPLATES.join(', ')}`)
    .action(async (dir: string, o: { template: string }) => setExit(await initVerb(dir, o, stdio)));
  registerAuditCommands(program, orch);
  registerAppCommand(program);
  return program;
}

let exitCode = 0;
function setExit(code: number): void {
  exitCode = code;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    // Objects a verb wrote that no ref names yet (they wait in memory for the next ref update) are on
    // disk before it exits, where git and the next command find them, as every id it printed promises.
    await finishObjectDatabases();
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (isAgoraError(e)) {
      process.stderr.write(terminalSafe(`agora: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`));
      if (process.env.AGORA_DEBUG && e.cause !== undefined) process.stderr.write(`caused by: ${errorStack(e.cause)}\n`);
      return e.exitCode;
    }
    process.stderr.write(
      terminalSafe(`agora: internal error: ${errorMessage(e)}\n`) +
        (process.env.AGORA_DEBUG ? `${errorStack(e)}\n` : 'set AGORA_DEBUG=1 for the stack trace; this is a bug, please report it\n'),
    );
    return 70;
  }
}

/** Where a verb prints: the terminal's live table, or JSON lines when `--json` is given or stdout is not a terminal. */
function outputFor(o: { json?: boolean }): Output {
  return o.json ? { ...stdio, tty: false } : stdio;
}
