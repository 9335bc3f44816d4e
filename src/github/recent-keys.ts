/**
 * The keys of the most recent deliveries (`owner/repo@sha`), so that GitHub's duplicated or redelivered
 * webhooks, and the sweep finding a commit an event already brought, are no-ops. Bounded: only the newest
 * `capacity` keys are kept (a key seen again moves to the newest). Forgetting an old key is harmless —
 * handling a commit twice finds what the first time did: the run id comes from the commit (the run
 * `exists`), a rejection is locked by its ref — so the bound only trades a little repeated work on very
 * old commits for memory that does not grow with the App's uptime.
 */
export class RecentKeys {
  private readonly keys = new Set<string>();

  constructor(readonly capacity = 5000) {}

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    this.keys.delete(key); // a Set iterates in insertion order: re-adding makes it the newest
    this.keys.add(key);
    while (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value!);
  }

  delete(key: string): void {
    this.keys.delete(key);
  }

  get size(): number {
    return this.keys.size;
  }
}
