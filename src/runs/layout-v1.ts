import type { RunState } from '../engine/types.js';
import type { GitStore, Oid } from '../git/types.js';

/**
 * Layout 1, the state commits written before layout 2 (docs/audit.md §9): the whole state in one
 * `state.json` and the logs flat in `logs/`. Kept to read (and so resume and verify) runs written then;
 * nothing writes it any more.
 */

const decoder = new TextDecoder();

export async function readStateV1(store: GitStore, stateBlob: Oid): Promise<RunState> {
  return JSON.parse(decoder.decode(await store.readBlob(stateBlob))) as RunState;
}
