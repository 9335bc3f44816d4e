import type { AuditFailure, FailureCode } from '../bundle.js';

/** The failures the steps of verification report, each with a stable code (docs/audit.md, "Failure codes"). */

/** At most this many failures of one code are listed; the rest are counted in one more failure. */
export const MAX_PER_CODE = 25;

export class Failures {
  readonly list: AuditFailure[] = [];
  private readonly counts = new Map<FailureCode, number>();

  add(code: FailureCode, message: string, where: { entry?: number; item?: string } = {}): void {
    const n = (this.counts.get(code) ?? 0) + 1;
    this.counts.set(code, n);
    if (n <= MAX_PER_CODE) this.list.push({ code, message, ...where });
  }

  has(code: FailureCode): boolean {
    return this.counts.has(code);
  }

  finish(): AuditFailure[] {
    for (const [code, n] of this.counts) {
      if (n > MAX_PER_CODE) this.list.push({ code, message: `… and ${n - MAX_PER_CODE} more ${code} failures` });
    }
    return this.list;
  }
}
