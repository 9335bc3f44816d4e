import type { CommitData, Identity } from './types.js';

/**
 * A commit object's content, byte for byte as isomorphic-git renders it (and so as commits written
 * before this module were): the tree, each parent, author and committer, a blank line, then the
 * message with carriage returns removed, no leading newlines and exactly one trailing newline. Written
 * in-process, a commit costs one small file; isomorphic-git's writer wrapped the file system and
 * deflated through a web stream on every call.
 */
export function renderCommit(commit: CommitData): Buffer {
  const lines = [
    `tree ${commit.tree}`,
    ...commit.parents.map((p) => `parent ${p}`),
    `author ${person(commit.author)}`,
    `committer ${person(commit.committer)}`,
  ];
  return Buffer.from(`${lines.join('\n')}\n\n${normalizeMessage(commit.message)}`, 'utf8');
}

function person(who: Identity): string {
  return `${who.name} <${who.email}> ${who.timestamp} ${timezone(who.timezoneOffset)}`;
}

/**
 * `timezoneOffset` is minutes west of UTC (as `Date.getTimezoneOffset` gives it): git writes its
 * negation as ±hhmm, and -0 as `-0000` (a zone git could not name), anything else that is zero as `+0000`.
 */
function timezone(offset: number): string {
  const east = offset === 0 ? offset : -offset;
  const negative = east < 0 || Object.is(east, -0);
  const minutes = Math.abs(offset);
  const hours = Math.floor(minutes / 60);
  return `${negative ? '-' : '+'}${String(hours).padStart(2, '0')}${String(minutes - hours * 60).padStart(2, '0')}`;
}

function normalizeMessage(message: string): string {
  return `${message.replace(/\r/g, '').replace(/^\n+/, '').replace(/\n+$/, '')}\n`;
}

/**
 * The commit a commit object's content holds, read in-process, or null when the content is not exactly
 * what {@link renderCommit} writes for it (extra headers such as `gpgsig`, a message git would
 * normalise, an identity with `<`, `>` or a newline, a zone git writes otherwise): the caller then reads
 * it through isomorphic-git. The parse is accepted only if rendering it gives back the same bytes, so it
 * is the one reading of those bytes, and the same as isomorphic-git's.
 */
export function parseCommit(content: Buffer): CommitData | null {
  const text = content.toString('utf8');
  const end = text.indexOf('\n\n');
  if (end < 0) return null;
  const lines = text.slice(0, end).split('\n');
  const tree = /^tree ([0-9a-f]{40})$/.exec(lines[0] ?? '')?.[1];
  if (tree === undefined) return null;
  const parents: string[] = [];
  let at = 1;
  for (let m; (m = /^parent ([0-9a-f]{40})$/.exec(lines[at] ?? '')); at += 1) parents.push(m[1]!);
  if (lines.length !== at + 2) return null;
  const author = parseIdentity(lines[at]!, 'author');
  const committer = parseIdentity(lines[at + 1]!, 'committer');
  if (!author || !committer) return null;
  const commit = { tree, parents, message: text.slice(end + 2), author, committer };
  return renderCommit(commit).equals(content) ? commit : null;
}

/**
 * `<key> <name> <<email>> <seconds> <±hhmm>`, with no `<`, `>` or line break in the name or the email
 * (CR, U+2028 and U+2029 too: isomorphic-git's reader does not take them, and a packed copy of the same
 * commit must read the same).
 */
function parseIdentity(line: string, key: string): Identity | null {
  const m = /^([a-z]+) ([^<>\n\r\u2028\u2029]*) <([^<>\n\r\u2028\u2029]*)> (\d+) ([+-])(\d\d)(\d\d)$/.exec(line);
  if (!m || m[1] !== key) return null;
  const east = Number(m[6]) * 60 + Number(m[7]);
  // Minutes west of UTC; `-0000` is kept as -0 (see timezone), `+0000` as 0.
  const timezoneOffset = m[5] === '-' ? (east === 0 ? -0 : east) : east === 0 ? 0 : -east;
  return { name: m[2]!, email: m[3]!, timestamp: Number(m[4]), timezoneOffset };
}
