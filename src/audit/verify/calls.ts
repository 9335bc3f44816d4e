import type { AuditEntry } from '../../log/entry.js';
import { formatVersion, type AuditBundle } from '../bundle.js';
import type { Failures } from './failures.js';

type CallEntry = Extract<AuditEntry, { kind: 'call' }>;

/** The hop-1 calls of each item attempt: who the item's own subagent was, as the log says (the repository step compares it with the plan). */
export interface RootCaller {
  itemId: string;
  attempt: number;
  caller: string;
  entry: number;
}

/**
 * Replays `call` entries (v5): the child attempts an attempt ran, written right after that attempt's
 * outcome. Each one must hang from its item's attempt or from an earlier child of the same attempt that
 * is an agent (a command dependency cannot call), call only a dependency its caller declared, sit one
 * hop below its parent and within the chain's max_hops, and run within its parent's time.
 */
export class CallReplay {
  readonly enabled: boolean;
  /** The attempt whose outcome was the last transition, while only its emit and call entries follow. */
  private open: { itemId: string; attempt: number } | null = null;
  /** The calls of the open attempt, by child id. */
  private calls = new Map<string, CallEntry>();
  /** The dependencies each caller declared, as the open attempt's calls record them. */
  private declared = new Map<string, string>();
  private readonly seen = new Set<string>();
  readonly roots: RootCaller[] = [];

  constructor(
    bundle: AuditBundle,
    private readonly f: Failures,
  ) {
    this.enabled = formatVersion(bundle) >= 5;
  }

  /** Every other entry: an item entry that ends an attempt opens it for call entries; anything else closes. */
  other(e: AuditEntry, wasRunning: boolean): void {
    if (e.kind === 'emit' && this.open && this.open.itemId === e.itemId && this.open.attempt === e.attempt) return;
    this.calls = new Map();
    this.declared = new Map();
    this.open = e.kind === 'item' && wasRunning && e.to !== 'running' ? { itemId: e.itemId, attempt: e.attempt } : null;
  }

  push(e: CallEntry, i: number): void {
    const at = { entry: i, item: e.itemId };
    const attemptId = `${e.itemId}.${e.attempt}`;
    if (!this.open || this.open.itemId !== e.itemId || this.open.attempt !== e.attempt) {
      this.f.add(
        'call-parent',
        `entry ${i}: call ${e.call} is recorded for attempt ${attemptId}, but it does not follow that attempt's outcome: a child attempt is recorded right after the attempt it ran in ends`,
        at,
      );
    }
    if (this.seen.has(e.call)) this.f.add('call-parent', `entry ${i}: call ${e.call} is recorded twice`, at);
    this.seen.add(e.call);
    if (!e.call.startsWith(`${e.parent}/${e.subagent}#`)) {
      this.f.add('call-parent', `entry ${i}: call id ${e.call} does not name its parent ${e.parent} and callee ${e.subagent} (<parent>/<callee>#<n>)`, at);
    }
    let parentHop: number | undefined = 0;
    if (e.parent === attemptId) {
      this.roots.push({ itemId: e.itemId, attempt: e.attempt, caller: e.caller, entry: i });
    } else {
      const parent = this.calls.get(e.parent);
      if (!parent) {
        parentHop = undefined; // no parent to count from: the missing parent is the failure
        this.f.add('call-parent', `entry ${i}: call ${e.call} names parent ${e.parent}, which is neither attempt ${attemptId} nor an earlier call of it`, at);
      } else {
        parentHop = parent.hop;
        if (parent.calleeKind !== 'agent') {
          this.f.add('call-parent', `entry ${i}: call ${e.call} was made by ${e.parent}, a ${parent.calleeKind} dependency: only an agent calls on`, at);
        }
        if (parent.subagent !== e.caller) {
          this.f.add('call-parent', `entry ${i}: call ${e.call} says ${e.caller} called, but its parent ${e.parent} ran ${parent.subagent}`, at);
        }
        if (parent.maxHops !== e.maxHops) {
          this.f.add(
            'call-hops',
            `entry ${i}: call ${e.call} records max_hops ${e.maxHops}, its parent ${e.parent} ${parent.maxHops}: one chain has one limit`,
            at,
          );
        }
        const late = parent.deadline !== undefined && (e.deadline === undefined || e.deadline > parent.deadline);
        if (late) {
          this.f.add(
            'call-time',
            `entry ${i}: call ${e.call} was given ${e.deadline === undefined ? 'no deadline' : `deadline ${e.deadline}`}, past its parent's ${parent.deadline}`,
            at,
          );
        }
        if (e.startedAt < parent.startedAt || e.finishedAt > parent.finishedAt) {
          this.f.add(
            'call-time',
            `entry ${i}: call ${e.call} ran ${e.startedAt}–${e.finishedAt}, outside its parent's ${parent.startedAt}–${parent.finishedAt}`,
            at,
          );
        }
      }
    }
    if (e.finishedAt < e.startedAt) this.f.add('call-time', `entry ${i}: call ${e.call} finished (${e.finishedAt}) before it started (${e.startedAt})`, at);
    if (parentHop !== undefined && e.hop !== parentHop + 1)
      this.f.add('call-hops', `entry ${i}: call ${e.call} is recorded at hop ${e.hop}, but its parent is at hop ${parentHop}`, at);
    if (e.hop > e.maxHops) this.f.add('call-hops', `entry ${i}: call ${e.call} is hop ${e.hop}, over max_hops ${e.maxHops}`, at);
    const declared = Array.isArray(e.declared) ? e.declared : [];
    if (!declared.includes(e.subagent)) {
      this.f.add(
        'call-dependency',
        `entry ${i}: call ${e.call}: ${e.caller} called ${e.subagent}, which is not among its declared dependencies (${declared.join(', ') || 'none'})`,
        at,
      );
    }
    const key = JSON.stringify([...declared].sort());
    const before = this.declared.get(e.caller);
    if (before !== undefined && before !== key) {
      this.f.add('call-dependency', `entry ${i}: call ${e.call} records other dependencies for ${e.caller} than an earlier call of the same attempt`, at);
    }
    this.declared.set(e.caller, key);
    this.calls.set(e.call, e);
  }
}
