/**
 * Looking for a secret in what Agora stored or sent, in the forms a careless worker writes it in. The
 * forms are computed here, independently of src/executors/secret-forms.ts, so a form the code forgot is
 * still looked for; each text is searched as it is and with its line breaks removed (a value wrapped
 * across lines).
 */
import { execFileSync } from 'node:child_process';

/** The forms of `secret` to search for, by name. */
export function secretForms(secret: string): Record<string, string> {
  const bytes = Buffer.from(secret);
  const forms: Record<string, string> = {
    literal: secret,
    base64: bytes.toString('base64'),
    'base64, URL-safe': bytes.toString('base64url'),
    hex: bytes.toString('hex'),
    'hex, upper case': bytes.toString('hex').toUpperCase(),
    'URL-encoded': encodeURIComponent(secret),
  };
  // Inside a longer base64 text, at each of the 3 byte offsets: the characters that depend on the secret alone.
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset, 0x41), bytes, Buffer.from('\n')]).toString('base64');
    forms[`base64 at offset ${offset}`] = encoded.slice(Math.ceil((offset * 8) / 6), Math.floor(((offset + bytes.length) * 8) / 6));
  }
  return forms;
}

/** Every form of `secret` found in `text` (as is, or with line breaks removed), as `<form> in <where>`. */
export function findSecret(where: string, text: string | Buffer, secret: string): string[] {
  const raw = typeof text === 'string' ? text : text.toString('latin1');
  const utf8 = typeof text === 'string' ? text : text.toString('utf8');
  const haystacks = [raw, utf8, raw.replace(/[\r\n]/g, ''), utf8.replace(/[\r\n]/g, '')];
  return Object.entries(secretForms(secret))
    .filter(([, form]) => haystacks.some((h) => h.includes(form)))
    .map(([name]) => `${name} in ${where}`);
}

/**
 * The contents of objects of the repository at `gitdir`: every object (loose or packed, referenced or
 * not: `cat-file --batch-all-objects`), or only those reachable from some ref (`rev-list --objects --all`).
 * Each comes decompressed, with its id.
 */
export function repositoryObjects(gitdir: string, which: 'all' | 'referenced'): Array<{ oid: string; content: Buffer }> {
  const ids =
    which === 'all'
      ? execFileSync('git', ['--git-dir', gitdir, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname)'], { encoding: 'utf8', maxBuffer: 1 << 28 })
      : execFileSync('git', ['--git-dir', gitdir, 'rev-list', '--objects', '--all'], { encoding: 'utf8', maxBuffer: 1 << 28 }).replace(/ .*$/gm, '');
  const list = ids.split('\n').filter(Boolean);
  if (list.length === 0) return [];
  const out = execFileSync('git', ['--git-dir', gitdir, 'cat-file', '--batch'], { input: `${list.join('\n')}\n`, maxBuffer: 1 << 30 });
  const objects: Array<{ oid: string; content: Buffer }> = [];
  let at = 0;
  while (at < out.length) {
    const eol = out.indexOf(0x0a, at);
    const [oid, , size] = out.subarray(at, eol).toString('utf8').split(' ');
    const start = eol + 1;
    objects.push({ oid: oid!, content: out.subarray(start, start + Number(size)) });
    at = start + Number(size) + 1;
  }
  return objects;
}

/** Every form of `secret` in the objects of `gitdir`, naming the object. */
export function findSecretInObjects(gitdir: string, which: 'all' | 'referenced', secret: string): string[] {
  return repositoryObjects(gitdir, which).flatMap((o) => findSecret(`object ${o.oid} of ${gitdir}`, o.content, secret));
}

/** The names of every ref of the repository at `gitdir`, with the objects they point at. */
export function refsOf(gitdir: string): string {
  return execFileSync('git', ['--git-dir', gitdir, 'for-each-ref', '--format=%(objectname) %(refname)'], { encoding: 'utf8' });
}
