/**
 * A bounded map of git objects by id, the least recently used dropped first (by count and by bytes).
 * An object's content cannot change under its id, so what was read and checked once can be handed out
 * again; each read gets its own copy, so that no caller can change what the next one sees.
 */
import type { GitObject, Oid } from './types.js';

export class RecentObjects {
  /** Kept objects in order of use, the least recent first (a Map iterates in insertion order). */
  private readonly byId = new Map<Oid, GitObject>();
  private bytes = 0;

  constructor(
    private readonly maxObjects: number,
    private readonly maxBytes: number,
  ) {}

  /** A copy of object `oid` when it is kept (it becomes the most recently used), else undefined. */
  get(oid: Oid): GitObject | undefined {
    const o = this.byId.get(oid);
    if (o === undefined) return undefined;
    this.byId.delete(oid);
    this.byId.set(oid, o);
    return { type: o.type, content: Buffer.from(o.content) };
  }

  /**
   * Keeps a copy of `o` as object `oid`, unless it is larger than a sixteenth of the byte budget (one
   * large object must not push out the many small ones); drops the least recently used beyond either bound.
   */
  set(oid: Oid, o: GitObject): void {
    if (this.byId.has(oid) || o.content.byteLength > this.maxBytes / 16) return;
    this.byId.set(oid, { type: o.type, content: Buffer.from(o.content) });
    this.bytes += o.content.byteLength;
    for (const [old, kept] of this.byId) {
      if (this.byId.size <= this.maxObjects && this.bytes <= this.maxBytes) break;
      this.byId.delete(old);
      this.bytes -= kept.content.byteLength;
    }
  }
}
