/** Ref names of the run layout (DESIGN.md §3), under a configurable namespace (default `refs/agora/`). */
export class RunRefs {
  readonly ns: string;
  constructor(namespace = 'refs/agora/') {
    this.ns = namespace.endsWith('/') ? namespace : `${namespace}/`;
  }
  run(runId: string): string {
    return `${this.ns}runs/${runId}`;
  }
  patch(runId: string, itemId: string): string {
    return `${this.ns}patches/${runId}/${itemId}`;
  }
  integration(runId: string): string {
    return `${this.ns}integration/${runId}`;
  }
  anchor(runId: string): string {
    return `${this.ns}anchors/${runId}`;
  }
  inbox(runId: string): string {
    return `${this.ns}inbox/${runId}`;
  }
  /** Who drives the run now, until when (DESIGN.md §1: any number of app replicas). */
  lease(runId: string): string {
    return `${this.ns}leases/${runId}`;
  }
  /** What the repository's runs hold and wait for, across runs (claims.ts): one ref, moved by compare-and-swap. */
  get claims(): string {
    return `${this.ns}claims`;
  }
  /** The anchors of runs `agora orch gc` pruned, one file per run in one commit's tree (see gc.ts). */
  get anchorArchive(): string {
    return `${this.ns}anchor-archive`;
  }
  /**
   * The `actions` target's claim of one attempt: created (never moved) by the one worker job that runs
   * it, so that of several jobs for one attempt (a redelivered webhook, a dispatch retried after its
   * response was lost) only one runs the item.
   */
  claim(runId: string, itemId: string, attempt: number): string {
    return `${this.claimsPrefix(runId)}${itemId}/${attempt}`;
  }
  /** Every attempt claim of one run (gc removes them with the run). */
  claimsPrefix(runId: string): string {
    return `${this.ns}attempt-claims/${runId}/`;
  }
  /**
   * The job the App dispatched for an attempt on the `actions` target (`job.json`), created before the
   * dispatch: the worker job runs only the job recorded here, whoever dispatched the workflow.
   */
  dispatch(runId: string, itemId: string, attempt: number): string {
    return `${this.dispatchesPrefix(runId)}${itemId}/${attempt}`;
  }
  /** Every dispatch record of one run (gc removes them with the run). */
  dispatchesPrefix(runId: string): string {
    return `${this.ns}dispatches/${runId}/`;
  }
  /** The attempt's result, pushed by the worker job after the item's container ended (see docs/actions.md). */
  result(runId: string, itemId: string, attempt: number): string {
    return `${this.resultsPrefix(runId)}${itemId}/${attempt}`;
  }
  resultsPrefix(runId: string): string {
    return `${this.ns}results/${runId}/`;
  }
  rejected(runId: string): string {
    return `${this.ns}rejected/${runId}`;
  }
  get runsPrefix(): string {
    return `${this.ns}runs/`;
  }
  get inboxPrefix(): string {
    return `${this.ns}inbox/`;
  }
  get rejectedPrefix(): string {
    return `${this.ns}rejected/`;
  }
}
