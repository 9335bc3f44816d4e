import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AGORA_AUDIT_PREDICATE_TYPE,
  IN_TOTO_STATEMENT_TYPE,
  buildStatement,
  parseStatement,
  statementDigest,
  statementPayload,
} from '../../src/audit/statement.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const input = {
  bundleSha256: sha256('bundle'),
  runId: 'nightly-42',
  root: sha256('root'),
  planDigest: `sha256:${sha256('plan')}`,
  patches: [
    { itemId: 'lint', commit: '1'.repeat(40) },
    { itemId: 'build', commit: '2'.repeat(40) },
  ],
};

describe('in-toto statement', () => {
  it('names the bundle by sha256 and each patch by git commit, with the Merkle root in the predicate', () => {
    const statement = buildStatement({ ...input, entries: 7 });
    expect(statement).toEqual({
      _type: IN_TOTO_STATEMENT_TYPE,
      subject: [
        { name: 'nightly-42.audit.json', digest: { sha256: input.bundleSha256 } },
        { name: 'patch:build', digest: { gitCommit: '2'.repeat(40) } },
        { name: 'patch:lint', digest: { gitCommit: '1'.repeat(40) } },
      ],
      predicateType: AGORA_AUDIT_PREDICATE_TYPE,
      predicate: { runId: 'nightly-42', merkleRoot: input.root, planDigest: input.planDigest, entries: 7, repository: null },
    });
    expect(IN_TOTO_STATEMENT_TYPE).toBe('https://in-toto.io/Statement/v1');
    expect(AGORA_AUDIT_PREDICATE_TYPE).toBe('https://agora.dev/audit/v2');
  });

  it('v2 records the GitHub repository by name and id; v1 (still verified) has no repository field', () => {
    const repository = { fullName: 'acme/widgets', id: 4711 };
    expect(buildStatement({ ...input, repository }).predicate.repository).toEqual(repository);
    const v1 = buildStatement({ ...input, entries: 7, version: 1 });
    expect(v1.predicateType).toBe('https://agora.dev/audit/v1');
    expect(v1.predicate).toEqual({ runId: 'nightly-42', merkleRoot: input.root, planDigest: input.planDigest, entries: 7 });
    expect(parseStatement(statementPayload(v1))).toEqual({ ok: true, statement: v1 });
    expect(() => buildStatement({ ...input, version: 1, repository })).toThrow(/v1 statement records no repository/);
    expect(() => buildStatement({ ...input, repository: { fullName: 'acme', id: 1 } })).toThrow(/owner\/name/);
    // A v1 predicate type with a repository is a statement Agora never made.
    const mixed = { ...v1, predicate: { ...v1.predicate, repository } };
    expect(parseStatement(Buffer.from(JSON.stringify(mixed)))).toMatchObject({ ok: false });
  });

  it('is byte-for-byte deterministic whatever the order of patches', () => {
    const a = statementPayload(buildStatement(input));
    const b = statementPayload(buildStatement({ ...input, patches: [...input.patches].reverse() }));
    expect(a.equals(b)).toBe(true);
    // Canonical JSON: sorted keys, no whitespace.
    expect(a.toString('utf8').startsWith('{"_type":"https://in-toto.io/Statement/v1","predicate":{')).toBe(true);
    expect(statementDigest(buildStatement(input))).toBe(createHash('sha256').update(a).digest('hex'));
  });

  it('refuses malformed digests and duplicate items', () => {
    expect(() => buildStatement({ ...input, bundleSha256: 'abc' })).toThrow(/bundleSha256/);
    expect(() => buildStatement({ ...input, root: sha256('x').toUpperCase() })).toThrow(/root/);
    expect(() => buildStatement({ ...input, patches: [{ itemId: 'x', commit: 'zz' }] })).toThrow(/patch x: commit/);
    expect(() => buildStatement({ ...input, patches: [input.patches[0]!, input.patches[0]!] })).toThrow(/listed twice/);
  });

  it('parses its own payload back, and gives reasons for anything else', () => {
    const statement = buildStatement(input);
    expect(parseStatement(statementPayload(statement))).toEqual({ ok: true, statement });
    expect(parseStatement(Buffer.from('nope'))).toMatchObject({ ok: false, reason: expect.stringMatching(/not JSON/) });
    const wrongType = { ...statement, predicateType: 'https://slsa.dev/provenance/v1' };
    expect(parseStatement(Buffer.from(JSON.stringify(wrongType)))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/predicateType/),
    });
    const extra = { ...statement, predicate: { ...statement.predicate, approvedBy: 'nobody' } };
    expect(parseStatement(Buffer.from(JSON.stringify(extra)))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/predicate: Unrecognized key.*approvedBy/),
    });
    const twice = statementPayload(statement).toString('utf8').replace('"runId":', '"runId":"other","runId":');
    expect(parseStatement(Buffer.from(twice))).toMatchObject({
      ok: false,
      reason: 'DSSE payload repeats the key "runId" at $.predicate.runId: parsers disagree on which one counts',
    });
    const badRoot = { ...statement, predicate: { ...statement.predicate, merkleRoot: 'x' } };
    expect(parseStatement(Buffer.from(JSON.stringify(badRoot)))).toMatchObject({ ok: false, reason: expect.stringMatching(/merkleRoot/) });
  });
});
