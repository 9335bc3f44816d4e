import type { EmittedBatch } from '../../engine/types.js';
import type { AuditEntry } from '../../log/entry.js';
import { dependenciesOf } from '../../plan/dag.js';
import type { WorkItem } from '../../plan/schema.js';
import { emittedItemDigest } from '../../runs/emit.js';
import { formatVersion, type AuditBundle, type BundleItem } from '../bundle.js';
import type { Failures } from './failures.js';
import { sameSet } from './same-set.js';

type EmitEntry = Extract<AuditEntry, { kind: 'emit' }>;

/**
 * Part of step "replay" (v4): every item was either in the plan (no `parent`) or added by an `emit`
 * entry of a done item, within the bundle's `limits`. An emit entry must come from an item that is done in
 * the attempt it names, carry hops one more than its emitter's (at most `maxHops`), add only items the
 * bundle lists with that parent and hops that are not yet in the run, and keep the run within `maxItems`.
 * An item's transitions before the entry that adds it, and an emitted item no entry adds, fail too.
 */
export class EmissionReplay {
  private readonly present = new Set<string>();
  private readonly hops = new Map<string, number>();
  private readonly declared: Map<string, BundleItem>;
  private readonly emitted = new Set<string>();
  /** The digest each emitted item was added with (the repository step compares the stored definitions). */
  readonly digests = new Map<string, string>();
  readonly enabled: boolean;

  constructor(
    private readonly bundle: AuditBundle,
    private readonly f: Failures,
  ) {
    this.enabled = formatVersion(bundle) >= 4;
    this.declared = new Map(bundle.items.map((i) => [i.id, i]));
    for (const i of bundle.items) {
      // Before v4 no item can have been emitted: every item is the plan's.
      if (this.enabled && i.parent !== undefined) continue;
      if (this.enabled && i.hops !== undefined)
        f.add('emit-parent', `item ${i.id} records hops ${i.hops} but no parent: only an emitted item has hops`, { item: i.id });
      this.present.add(i.id);
      this.hops.set(i.id, 0);
    }
    // A v4 bundle is written only for a run with an emit entry, and always with the limits it held them
    // to (a v5 bundle carries them only when it has emit entries, as checked where one is met).
    if (formatVersion(bundle) === 4 && bundle.limits === undefined)
      f.add('emit-budget', 'the bundle is v4 but records no limits (maxHops, maxItems): every v4 bundle has them');
  }

  /** Whether item `id` is in the run at this point of the log (the caller reports its entry when it is not). */
  has(id: string): boolean {
    return this.present.has(id);
  }

  push(e: EmitEntry, i: number, emitter: { status: string; attempts: number } | undefined): void {
    const by = e.itemId;
    const limits = this.bundle.limits;
    if (!emitter || !this.present.has(by)) {
      this.f.add('emit-parent', `entry ${i}: item ${String(by)}, which the run does not have (yet), emits items`, { entry: i });
    } else if (emitter.status !== 'done' || emitter.attempts !== e.attempt) {
      this.f.add(
        'emit-parent',
        `entry ${i}: item ${by} emits items as attempt ${e.attempt}, but it is ${emitter.status} in attempt ${emitter.attempts}: only a done item adds items, in the step that records it done`,
        { entry: i, item: by },
      );
    }
    const key = `${by}\u0000${e.attempt}`;
    if (this.emitted.has(key)) this.f.add('emit-duplicate', `entry ${i}: item ${by} emits a second time in attempt ${e.attempt}`, { entry: i, item: by });
    this.emitted.add(key);
    const expected = (this.hops.get(by) ?? 0) + 1;
    if (e.hops !== expected)
      this.f.add(
        'emit-hops',
        `entry ${i}: items emitted by ${by} are recorded ${e.hops} hops from the plan, but ${by} is ${expected - 1} hops away, so they are ${expected}`,
        { entry: i, item: by },
      );
    if (!limits) this.f.add('emit-budget', `entry ${i}: the bundle records no limits (maxHops, maxItems) to hold emitted items to`, { entry: i });
    else if (expected > limits.maxHops)
      this.f.add('emit-hops', `entry ${i}: items emitted by ${by} are ${expected} hops from the plan, over maxHops ${limits.maxHops}`, { entry: i, item: by });
    for (const { id, digest } of Array.isArray(e.items) ? e.items : []) {
      const item = this.declared.get(id);
      if (this.present.has(id)) {
        this.f.add('emit-duplicate', `entry ${i}: item ${by} emits ${id}, which the run already has`, { entry: i, item: id });
        continue;
      }
      if (!item || item.parent !== by) {
        this.f.add(
          'emit-parent',
          `entry ${i}: item ${by} emits ${id}, but the bundle ${item ? `says ${id}'s parent is ${String(item.parent)}` : `does not list ${id}`}`,
          { entry: i, item: id },
        );
      } else if (item.hops !== expected) {
        this.f.add('emit-hops', `entry ${i}: item ${id} is added ${expected} hops from the plan, but the bundle says ${String(item.hops)}`, {
          entry: i,
          item: id,
        });
      }
      this.present.add(id);
      this.hops.set(id, expected);
      this.digests.set(id, digest);
    }
    if (limits && this.present.size > limits.maxItems) {
      this.f.add('emit-budget', `entry ${i}: item ${by}'s emission brings the run to ${this.present.size} items, over maxItems ${limits.maxItems}`, {
        entry: i,
        item: by,
      });
    }
  }

  /** Every item the bundle says was emitted must have been added by an emit entry. */
  finish(): void {
    if (!this.enabled) return;
    for (const item of this.bundle.items) {
      if (item.parent !== undefined && !this.present.has(item.id)) {
        this.f.add('emit-missing', `item ${item.id} says ${item.parent} emitted it, but no emit entry of ${item.parent} adds it`, { item: item.id });
      }
    }
  }
}

/**
 * With `--repo`: each emitted item's definition, as the run state stores it (`emitted.json`), must be the
 * one its emit entry names by digest, emitted by the parent the bundle names, with the bundle's
 * dependencies and locks; and the state holds no emitted item the bundle does not list.
 */
export function checkEmittedDefinitions(
  bundle: AuditBundle,
  digests: ReadonlyMap<string, string>,
  batches: readonly EmittedBatch[],
  where: string,
  f: Failures,
): void {
  const stored = new Map<string, { by: string; item: WorkItem }>();
  for (const batch of batches) for (const { item } of batch.items) stored.set(item.id, { by: batch.by, item });
  const listed = new Set<string>();
  for (const item of bundle.items) {
    if (item.parent === undefined) continue;
    listed.add(item.id);
    const s = stored.get(item.id);
    if (!s) {
      f.add('emit-missing', `${where} holds no emitted item ${item.id}, which the bundle says ${item.parent} emitted`, { item: item.id });
      continue;
    }
    if (s.by !== item.parent) f.add('emit-parent', `${where} says ${s.by} emitted ${item.id}, the bundle ${item.parent}`, { item: item.id });
    const digest = emittedItemDigest(s.item);
    const logged = digests.get(item.id);
    if (logged !== undefined && logged !== digest) {
      f.add('emit-digest', `emitted item ${item.id} in ${where} has digest ${digest}, but its emit entry names ${logged}`, { item: item.id });
    }
    if (!sameSet(dependenciesOf(s.item), item.dependsOn) || !sameSet(s.item.resourceLocks, item.locks)) {
      f.add('emit-digest', `emitted item ${item.id}: the bundle's dependencies or locks differ from its definition in ${where}`, { item: item.id });
    }
  }
  for (const id of stored.keys()) {
    if (!listed.has(id)) f.add('emit-missing', `${where} holds emitted item ${id}, which the bundle does not list as emitted`, { item: id });
  }
}
