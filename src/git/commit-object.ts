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
