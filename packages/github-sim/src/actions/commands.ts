/**
 * Workflow commands a step prints on stdout, as the runner handles them: `::add-mask::` (the value
 * is `***` in every later log line), `::error|warning|notice file=,line=,…::` (an annotation and a
 * `##[error]`-style log line), `::group::`/`::endgroup::`, `::stop-commands::<token>` (commands are
 * printed, not run, until `::<token>::`), and the disabled `::set-output`, `::save-state`,
 * `::set-env`, `::add-path` (not run; the log says which file to use instead).
 */

export interface Annotation {
  level: 'failure' | 'warning' | 'notice';
  message: string;
  title: string | null;
  file: string | null;
  line: number | null;
  endLine: number | null;
  column: number | null;
  endColumn: number | null;
}

const LEVEL = { error: 'failure', warning: 'warning', notice: 'notice' } as const;

/** `%25`, `%0D`, `%0A` in data; also `%3A`, `%2C` in properties (the toolkit's escaping). */
const unescape = (v: string, property: boolean): string => {
  let out = v.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n');
  if (property) out = out.replace(/%3A/gi, ':').replace(/%2C/gi, ',');
  return out.replace(/%25/g, '%');
};

/** The legacy form's escaping, in its properties and data alike: `%3B` `;`, `%5D` `]`, `%0D`, `%0A`, `%25`. */
const unescapeLegacy = (v: string): string => v.replace(/%3B/gi, ';').replace(/%5D/gi, ']').replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%');

/**
 * Leading white space the runner trims before it looks for `::`: .NET's, which unlike JavaScript's `\s`
 * holds U+0085 (NEXT LINE) and not U+FEFF.
 */
const LEADING_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*/;

interface ParsedCommand {
  command: string;
  properties: Record<string, string>;
  data: string;
}

/**
 * A line as the runner reads it: `::name k=v,k=v::data` after leading white space, or the legacy
 * `##[name k=v;k=v]data` anywhere in the line (the runner still obeys both). Null: not a command.
 */
function parseCommand(text: string): ParsedCommand | null {
  const v2 = /^::([A-Za-z][A-Za-z0-9_-]*)(?: ([^:]*))?::(.*)$/.exec(text.replace(LEADING_SPACE, ''));
  if (v2) {
    const properties = Object.fromEntries(
      (v2[2] ?? '')
        .split(',')
        .filter(Boolean)
        .map((p) => [p.slice(0, p.indexOf('=')).trim(), unescape(p.slice(p.indexOf('=') + 1), true)]),
    ) as Record<string, string>;
    return { command: v2[1]!, properties, data: unescape(v2[3]!, false) };
  }
  const start = text.indexOf('##[');
  const end = start < 0 ? -1 : text.indexOf(']', start + 3);
  if (end < 0) return null;
  const [command = '', ...rest] = text.slice(start + 3, end).split(' ');
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(command)) return null;
  const properties = Object.fromEntries(
    rest
      .join(' ')
      .split(';')
      .filter((p) => p.includes('='))
      .map((p) => [p.slice(0, p.indexOf('=')).trim(), unescapeLegacy(p.slice(p.indexOf('=') + 1))]),
  ) as Record<string, string>;
  return { command, properties, data: unescapeLegacy(text.slice(end + 1)) };
}

const FILE_FOR: Record<string, string> = { 'set-output': 'GITHUB_OUTPUT', 'save-state': 'GITHUB_STATE', 'set-env': 'GITHUB_ENV', 'add-path': 'GITHUB_PATH' };

/** One job's command processor: masks and annotations last the whole job. */
export class WorkflowCommands {
  readonly annotations: Annotation[] = [];
  private readonly masks: string[] = [];
  private stopToken: string | null = null;

  constructor(private readonly write: (line: string) => void) {}

  /** Masks a value (as `::add-mask::` does) in every line logged from now on. */
  mask(value: string): void {
    if (value.trim() !== '' && !this.masks.includes(value)) this.masks.push(value);
  }

  private masked(line: string): string {
    let out = line;
    for (const m of [...this.masks].sort((a, b) => b.length - a.length)) out = out.split(m).join('***');
    return out;
  }

  /** Logs a line the runner itself writes (masked). */
  log(line: string): void {
    this.write(this.masked(line));
  }

  /** Handles one line of a step's output. */
  line(raw: string): void {
    const text = raw.replace(/\r$/, '');
    const parsed = parseCommand(text);
    if (this.stopToken !== null) {
      if (parsed && parsed.command === this.stopToken && Object.keys(parsed.properties).length === 0) this.stopToken = null;
      else this.log(text);
      return;
    }
    if (!parsed) return this.log(text);
    const { command, properties, data: value } = parsed;
    switch (command) {
      case 'add-mask':
        this.mask(value);
        return;
      case 'error':
      case 'warning':
      case 'notice': {
        const num = (k: string): number | null => (properties[k] !== undefined && /^\d+$/.test(properties[k]!) ? Number(properties[k]) : null);
        const a: Annotation = {
          level: LEVEL[command],
          message: this.masked(value),
          title: properties.title ?? null,
          file: properties.file ?? null,
          line: num('line'),
          endLine: num('endLine') ?? num('line'),
          column: num('col'),
          endColumn: num('endColumn') ?? num('col'),
        };
        this.annotations.push(a);
        return this.log(`##[${command}]${value}`);
      }
      case 'group':
        return this.log(`##[group]${value}`);
      case 'endgroup':
        return this.log('##[endgroup]');
      case 'stop-commands':
        this.stopToken = value;
        return;
      case 'debug':
        return this.log(`##[debug]${value}`);
      default:
        if (command in FILE_FOR) {
          this.log(`##[error]Unable to process command '${text}' successfully.`);
          return this.log(`##[error]The \`${command}\` command is disabled. Please upgrade to using Environment Files (${FILE_FOR[command]}).`);
        }
        return this.log(text);
    }
  }
}
