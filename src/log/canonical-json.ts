import canonicalizeModule from 'canonicalize';

/**
 * Canonical JSON (RFC 8785, JCS): object keys sorted by their UTF-16 code units, no whitespace, strings and
 * numbers in ECMAScript's serialisation, UTF-8. What every hash and signature in a run's log is taken over.
 */

const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/** The canonical JSON text of `value`; TypeError when it has none (undefined, a function, a symbol). */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON representation');
  return text;
}
