/**
 * A child for test/git/loose-objects.test.ts, run with `node --import tsx`:
 *   object-child.ts <repo> <text>   writes <text> as a blob and prints its id.
 * With AGORA_CRASH_AT=object-temp-written:1 (a large blob, written loose) or pack-temp-written:1 (a small one,
 * packed when written out) it is killed between writing the temporary file and renaming it.
 */
import { openLocalStore } from '../../src/git/local-store.js';

const [repo, text] = process.argv.slice(2);
if (!repo || text === undefined) throw new Error('usage: object-child.ts <repo> <text>');
const store = await openLocalStore(repo);
const oid = await store.writeBlob(text);
await store.flushObjects();
process.stdout.write(`${oid}\n`);
