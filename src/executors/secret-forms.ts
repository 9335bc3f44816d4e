/**
 * The forms in which a secret value commonly shows up in a log, each to be redacted like the value itself.
 * Pure: no I/O.
 *
 * - the value as it is (its own line breaks left out: the redactor lets a line break stand between any
 *   two characters, so a PEM key matches with LF or CRLF, or wrapped anew);
 * - base64, standard and URL-safe alphabets: the value encoded alone (with its `=` padding), and for each
 *   of the 3 byte offsets the value can have inside a longer base64 stream (`echo "token=$T" | base64`),
 *   the characters that depend on the value's bytes alone;
 * - hex, lower and upper case;
 * - URL encoding (percent-encoding), as encodeURIComponent and as RFC 3986 (which also encodes `!'()*`),
 *   with upper and lower case hex digits, and with `+` for a space as in form data.
 *
 * Forms identical to another are listed once; forms shorter than `minLength` are left out (a short
 * fragment would match unrelated text).
 */
export function secretForms(value: string, minLength: number): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms = new Set<string>([
    withoutLineBreaks(value),
    ...base64Forms(bytes),
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
    ...urlEncodedForms(bytes),
  ]);
  return [...forms].filter((f) => f.length >= minLength);
}

/** Line breaks in a secret stand for "a line break may be here": the redactor allows one anywhere. */
export function withoutLineBreaks(value: string): string {
  return value.replace(/[\r\n]/g, '');
}

function base64Forms(bytes: Buffer): string[] {
  const standard: string[] = [bytes.toString('base64')];
  for (let offset = 0; offset < 3; offset++) standard.push(base64Core(bytes, offset));
  return standard.flatMap((s) => [s, toUrlSafe(s)]);
}

/**
 * The base64 characters fixed by `bytes` alone when `offset` (0–2) unknown bytes precede them in the
 * stream: each character holds 6 bits, so those that straddle a neighbouring byte are left out.
 */
function base64Core(bytes: Buffer, offset: number): string {
  const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
  const firstBit = offset * 8;
  const endBit = firstBit + bytes.length * 8;
  return encoded.slice(Math.ceil(firstBit / 6), Math.floor(endBit / 6));
}

function toUrlSafe(base64: string): string {
  return base64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function urlEncodedForms(bytes: Buffer): string[] {
  // As encodeURIComponent, and as RFC 3986 (which also encodes `!'()*`); by bytes, so that any text works.
  const component = percentEncode(bytes, /[A-Za-z0-9\-_.!~*'()]/);
  const rfc3986 = percentEncode(bytes, /[A-Za-z0-9\-_.~]/);
  const forms = [component, rfc3986];
  for (const f of [component, rfc3986]) forms.push(f.replace(/%20/g, '+'));
  return forms.flatMap((f) => [f, f.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase())]);
}

function percentEncode(bytes: Buffer, unreserved: RegExp): string {
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && unreserved.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
