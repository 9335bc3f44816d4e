import { crashPoint } from '../crash-points.js';
import { EMPTY_CLAIMS, liveEntries, type ClaimsDoc, type RunView } from '../engine/cross-run-holdings.js';
import { agoraIdentity } from '../git/identity.js';
import type { GitStore, Oid, RefSwap } from '../git/types.js';
import { canonicalJson } from '../log/canonical-json.js';
import type { RunRefs } from './refs.js';
import { AgoraError } from '../errors.js';
import { checkClaimsDoc } from './claims-doc.js';
import { LOST_RACE, retryOnConflict } from '../retry-on-conflict.js';
import { readListedRunAt } from './listed-run.js';
import type { StoredRun } from './state-store.js';

/**
 * The claims ref, `refs/agora/claims`: what every run of the repository holds (its running items'
 * locks and queue slots) and waits for, in one commit's `claims.json`, moved only by compare-and-swap
 * (on GitHub: a leased push, like every shared ref). The rules (when an entry is void, who may start)
 * are the engine's (src/engine/cross-run-holdings.ts); this module reads and writes the document and
 * reads the state of the runs it names. A driver moves its claims in the same transaction as the state
 * commit that starts the items, ahead of it: a crash between the two renames of a local transaction leaves
 * a claim its run's next state commit voids, never a start without its claim.
 */

const FILE = 'claims.json';
const decoder = new TextDecoder();

/** The document as read: the commit it came from (null: none yet) and its live entries. */
export interface ClaimsRead {
  head: Oid | null;
  live: ClaimsDoc;
}

export class ClaimsLedger {
  /** Other runs' views, by run id, for the state commit they were read from. */
  private readonly views = new Map<string, { head: Oid; view: RunView }>();
  /** The document this ledger last read or wrote, by its commit (a commit never changes: no I/O to read it again). */
  private known: { head: Oid; doc: ClaimsDoc } | null = null;

  constructor(
    private readonly store: GitStore,
    private readonly refs: RunRefs,
  ) {}

  /** The document's live entries, judged against `self` as given and every other run's current state. */
  async read(self: StoredRun): Promise<ClaimsRead> {
    const head = await this.store.resolveRef(this.refs.claims);
    const doc = head ? await this.readDoc(head) : EMPTY_CLAIMS;
    const views = new Map<string, RunView | null>([[self.runId, viewOf(self)]]);
    for (const run of new Set([...doc.claims.map((c) => c.run), ...doc.waits.map((w) => w.run)])) {
      if (!views.has(run)) views.set(run, await this.viewOf(run));
    }
    return { head, live: liveEntries(doc, (run) => views.get(run) ?? null) };
  }

  /** Compare-and-swap of the claims ref from what `read` saw to `doc`. False: another writer moved it. */
  async write(read: ClaimsRead, doc: ClaimsDoc, now: number): Promise<boolean> {
    const landed = await this.store.casRefs([await this.swapTo(read, doc, now)]);
    if (landed) crashPoint('claims-written');
    return landed;
  }

  /**
   * The compare-and-swap that moves the claims ref from what `read` saw to `doc` (its commit written), for
   * a caller to put in its own transaction: the driver moves it with the state commit that starts the
   * items it claims, first in the transaction, so the claim is never behind the start (one atomic push on GitHub).
   */
  async swapTo(read: ClaimsRead, doc: ClaimsDoc, now: number): Promise<RefSwap> {
    return { ref: this.refs.claims, next: await this.commitDoc(doc, now), expected: read.head };
  }

  /**
   * Removes every entry of `runs` (runs `agora orch gc` pruned: whatever they recorded is void) by
   * compare-and-swap, reading afresh after a lost race; returns how many entries went (with `dryRun`:
   * would go). Nothing is written when none of their entries remain.
   */
  async dropRuns(runs: ReadonlySet<string>, now: number, dryRun = false): Promise<number> {
    return retryOnConflict(this.refs.claims, 10, async () => {
      const head = await this.store.resolveRef(this.refs.claims);
      if (!head) return 0;
      const doc = await this.readDoc(head);
      const kept: ClaimsDoc = { version: 1, claims: doc.claims.filter((c) => !runs.has(c.run)), waits: doc.waits.filter((w) => !runs.has(w.run)) };
      const dropped = doc.claims.length + doc.waits.length - kept.claims.length - kept.waits.length;
      if (dropped === 0 || dryRun) return dropped;
      return (await this.store.casRef(this.refs.claims, await this.commitDoc(kept, now), head)) ? dropped : LOST_RACE;
    });
  }

  private async commitDoc(doc: ClaimsDoc, now: number): Promise<Oid> {
    const who = agoraIdentity(now);
    const text = canonicalJson(doc);
    const blob = await this.store.writeBlob(text);
    const tree = await this.store.writeTree([{ mode: '100644', path: FILE, oid: blob, type: 'blob' }]);
    // No parent: the document is derived bookkeeping, not history (the runs' own chains are the record).
    const head = await this.store.writeCommit({ tree, parents: [], message: 'agora: claims\n', author: who, committer: who });
    // What a later read of this commit would find: the text parsed back, not the caller's object.
    const written = checkClaimsDoc(JSON.parse(text));
    if ('doc' in written) this.known = { head, doc: written.doc };
    return head;
  }

  private async readDoc(head: Oid): Promise<ClaimsDoc> {
    if (this.known?.head === head) return this.known.doc;
    const doc = await this.readDocFromStore(head);
    this.known = { head, doc };
    return doc;
  }

  private async readDocFromStore(head: Oid): Promise<ClaimsDoc> {
    const commit = await this.store.readCommit(head);
    const entry = (await this.store.readTree(commit.tree)).find((e) => e.path === FILE);
    let checked: ReturnType<typeof checkClaimsDoc>;
    if (!entry) checked = { problem: `its tree has no ${FILE}` };
    else {
      try {
        checked = checkClaimsDoc(JSON.parse(decoder.decode(await this.store.readBlob(entry.oid))));
      } catch {
        checked = { problem: `${FILE} is not JSON` };
      }
    }
    if ('problem' in checked) {
      throw new AgoraError(
        'claims-corrupt',
        `${this.refs.claims} points at ${head}, which holds no claims document Agora wrote: ${checked.problem}`,
        `stop every agora serve (and App replica) of this repository, delete the ref (git update-ref -d ${this.refs.claims}) and start them again: running items are then claimed afresh`,
      );
    }
    return checked.doc;
  }

  private async viewOf(runId: string): Promise<RunView | null> {
    const head = await this.store.resolveRef(this.refs.run(runId));
    if (!head) return null;
    const cached = this.views.get(runId);
    if (cached?.head === head) return cached.view;
    // A ref overwritten with something that holds no run (anyone who may push can) keeps every claim and
    // wait it had, until it is mended or deleted: its workers may still run (the App's do), and a run of a
    // newer Agora this one cannot read is not junk.
    const run = await readListedRunAt(this.store, this.refs.run(runId), runId, head, () => undefined);
    const view = run === null ? UNREADABLE_RUN : viewOf(run);
    this.views.set(runId, { head, view });
    return view;
  }
}

/** The view of a run that cannot be read: older than every claim and wait, so all of them hold. */
const UNREADABLE_RUN: RunView = { seq: -1, item: () => undefined };

function viewOf(run: StoredRun): RunView {
  const items = run.state.items;
  return { seq: run.last?.seq ?? -1, item: (id) => items[id] };
}
