/**
 * A child process for the CAS race test (test/git/ref-race.test.ts), run with `node --import tsx`.
 *
 *   cas-child.ts write <repo> <ref> <writer-id> <count>
 *     `count` times: read the ref → write a commit whose parent is that value → CAS(prev); retry on false.
 *   cas-child.ts read <repo> <ref> <stop-file>
 *     reads the ref in a loop until <stop-file> exists.
 *
 * Every read must be a whole object id (the ref exists before the children start, so null is a lost
 * ref). Prints one JSON line with its counts; exits non-zero on a violation.
 */
import { existsSync } from 'node:fs';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore } from '../../src/git/local-store.js';

const [mode, repo, ref, arg3, arg4] = process.argv.slice(2);
if (!mode || !repo || !ref || !arg3) throw new Error('usage: cas-child.ts write|read <repo> <ref> ...');
const store = await openLocalStore(repo);
let reads = 0;
const badReads: string[] = [];

async function read(): Promise<string> {
  reads++;
  const value = await store.resolveRef(ref!);
  if (value === null || !/^[0-9a-f]{40}$/.test(value)) {
    badReads.push(String(value));
    throw new Error(`read ${JSON.stringify(value)} from ${ref}`);
  }
  return value;
}

if (mode === 'write') {
  const writer = arg3;
  const count = Number(arg4);
  const tree = await store.writeTree([]);
  let won = 0;
  let lost = 0;
  while (won < count) {
    const prev = await read();
    const who = agoraIdentity(Date.now());
    const next = await store.writeCommit({ tree, parents: [prev], message: `w${writer} ${won}`, author: who, committer: who });
    if (await store.casRef(ref, next, prev)) won++;
    else lost++;
  }
  process.stdout.write(`${JSON.stringify({ writer, won, lost, reads })}\n`);
} else if (mode === 'read') {
  const stopFile = arg3;
  while (!existsSync(stopFile)) await read();
  process.stdout.write(`${JSON.stringify({ reader: true, reads, badReads })}\n`);
} else {
  throw new Error(`unknown mode ${mode}`);
}
