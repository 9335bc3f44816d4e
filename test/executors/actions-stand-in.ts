import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SimRunner } from '@agora/github-sim';
import { startWorld, type World } from '@agora/github-sim/harness';
import { workerJobName } from '../../src/executors/actions-job.js';
import { ActionsTarget, type ActionsApi } from '../../src/executors/actions-target.js';
import { createLogSink } from '../../src/executors/log-sink.js';
import type { WorkerJob, WorkerResult } from '../../src/executors/types.js';
import { mirrorRef } from '../../src/git/refspec.js';
import { actionsApi } from '../../src/github/actions-api.js';
import { MirroredGitStore } from '../../src/github/mirrored-store.js';
import type { Octokit } from '../../src/github/octokit.js';
import { RemoteMirror } from '../../src/github/remote-sync.js';
import { RunRefs } from '../../src/runs/refs.js';
import { eventually } from '../support/eventually.js';

/**
 * A stand-in for the `actions` target's worker workflow: the shipped workflow's inputs and job name, bash
 * steps instead of the Agora Action. The job claims the attempt as `mode: worker` does (a create-only push
 * of `refs/agora/attempt-claims/<run>/<item>/<attempt>` naming its workflow run), holds the item until the
 * test opens its gate (a file `<gates>/<item>`), and pushes a result commit in the shape
 * src/executors/actions-result.ts reads (`out.txt` added to the workspace, exit status 0). For target tests
 * that need no container engine and no Node 24 on the runner.
 *
 * {@link StandIn} is the rest of such a test's world: the simulator running that workflow on a runner, and
 * orchestrator processes that each wire an actions target as the App wires it, die, and come after each other.
 */
export const standInWorker = (gates: string) => `name: agora-worker
on:
  workflow_dispatch:
    inputs:
      run: { required: true, type: string }
      item: { required: true, type: string }
      attempt: { required: true, type: string }
      runs-on: { required: false, type: string, default: '["self-hosted","agora"]' }
      job: { required: true, type: string }
permissions:
  contents: write
jobs:
  attempt:
    name: agora \${{ inputs.run }} \${{ inputs.item }} \${{ inputs.attempt }}
    runs-on: \${{ fromJSON(inputs.runs-on) }}
    env:
      ATTEMPT: \${{ inputs.run }}/\${{ inputs.item }}/\${{ inputs.attempt }}
    steps:
      - uses: actions/checkout@v4
      - name: claim the attempt
        run: |
          git config user.name 'agora worker'
          git config user.email agora@localhost
          claim=$(git commit-tree "$(git mktree </dev/null)" -m "agora: $ATTEMPT claimed by $GITHUB_RUN_ID/$GITHUB_RUN_ATTEMPT/$RUNNER_NAME")
          git push origin "$claim:refs/agora/attempt-claims/$ATTEMPT"
      - name: the item, held until the test opens its gate
        run: while [ ! -e "${gates}/\${{ inputs.item }}" ]; do sleep 0.1; done
      - name: push the result
        run: |
          echo 'made on the runner' > out.txt
          git add out.txt
          workspace=$(git write-tree)
          log=$(echo 'the item ran' | git hash-object -w --stdin)
          result=$(printf '{"base":"%s","exitCode":0}' "$GITHUB_SHA" | git hash-object -w --stdin)
          tree=$(printf '100644 blob %s\\tlog\\n100644 blob %s\\tresult.json\\n040000 tree %s\\tworkspace\\n' "$log" "$result" "$workspace" | git mktree)
          commit=$(git commit-tree "$tree" -m "agora: result of $ATTEMPT" -m "Agora-Worker: $GITHUB_RUN_ID/$GITHUB_RUN_ATTEMPT/$RUNNER_NAME")
          git push origin "$commit:refs/agora/results/$ATTEMPT"
`;

/** How a {@link StandIn.orchestrator} wires its target. */
export interface OrchestratorOptions {
  startTimeoutSeconds: number;
  /** The target's clock, in the test's hands; left out, the real one. */
  clock?: { now: number };
  /** What the target's REST calls become (a GitHub that answers otherwise); the calls are recorded after it. */
  wrap?: (api: ActionsApi) => ActionsApi;
}

/**
 * The simulator with the stand-in worker workflow (and any other files a case needs) on `octo/demo`, a runner
 * labelled `agora` for its jobs, and a temporary directory for the gates, the mirrors and the workspaces.
 * `start` is for `beforeAll`, `close` for `afterAll`.
 */
export class StandIn {
  readonly refs = new RunRefs('refs/agora/');
  /** The runner the worker jobs run on; a case that kills it may add another. */
  runner!: SimRunner;
  private world?: World;
  private tmp?: string;
  private processes = 0;

  constructor(
    private readonly prefix: string,
    private readonly files: Record<string, string> = {},
  ) {}

  get w(): World {
    if (!this.world) throw new Error('the stand-in world is not started');
    return this.world;
  }

  get dir(): string {
    if (!this.tmp) throw new Error('the stand-in world is not started');
    return this.tmp;
  }

  async start(): Promise<void> {
    this.tmp = await mkdtemp(join(tmpdir(), this.prefix));
    await mkdir(join(this.tmp, 'gates'));
    this.world = await startWorld({
      files: { 'README.md': '# demo\n', '.github/workflows/agora-worker.yml': standInWorker(join(this.tmp, 'gates')), ...this.files },
    });
    this.runner = this.world.sim.addRunner({ labels: ['agora'], name: 'runner' });
  }

  /**
   * Opens the gates of `items` (no job stays held), waits until the simulator's Actions are idle when `idle`
   * (not where a run waits for a runner nobody has), and stops the simulator and removes the directory.
   */
  async close(items: readonly string[], { idle }: { idle: boolean }): Promise<void> {
    if (this.tmp) for (const item of items) await this.open(item);
    if (idle) await this.world?.sim.actionsIdle();
    await this.world?.close();
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
  }

  /** Opens the gate of `item`: its job goes on to push the result. */
  open(item: string): Promise<void> {
    return writeFile(join(this.dir, 'gates', item), '');
  }

  /** The commit `ref` names on GitHub, if any. */
  onGitHub(ref: string) {
    return this.w.sim.sim.repo('octo/demo').git.resolve(ref, 'commit');
  }

  /** The simulator's worker jobs of attempt 1 of `item`. */
  jobsOf(item: string) {
    const name = workerJobName('r-1', item, 1);
    return [...this.w.sim.sim.actions.jobs.values()].filter((j) => j.name === name);
  }

  /** Attempt 1 of `item` of run `r-1`, on the repository's head, as the driver hands it to the target. */
  jobOf(item: string, workspaceDir: string): WorkerJob {
    const log = createLogSink({ secrets: [] });
    return { runId: 'r-1', itemId: item, attempt: 1, workspaceDir, base: this.w.repo.headSha, command: ['/bin/sh', '-c', 'true'], env: {}, secrets: {}, log };
  }

  /**
   * One orchestrator process: a mirror of its own (a fresh cache) and an actions target on it, wired as the
   * App wires it (its REST calls, recorded in `calls` as `cancel <run>`, `get <run>` and `jobs <run>`; the mirror's fetch).
   * `die()` is its crash: from then on it neither fetches nor calls GitHub, and what it was waiting for never ends.
   */
  async orchestrator(o: OrchestratorOptions) {
    const nth = ++this.processes;
    const { w, dir, refs } = this;
    const store = new MirroredGitStore(await RemoteMirror.open(join(dir, `mirror-${nth}.git`), `${w.sim.gitUrl}/octo/demo.git`, () => w.token()), refs.ns);
    await store.fetch([mirrorRef('refs/heads/main')]);
    let dead = false;
    const never = new Promise<never>(() => undefined);
    const counts = { looks: 0 };
    const calls: string[] = [];
    const wrap = o.wrap ?? ((api) => api);
    const clock = o.clock;
    const target = new ActionsTarget({
      config: { workflow: 'agora-worker.yml', labels: ['self-hosted', 'agora'], startTimeoutSeconds: o.startTimeoutSeconds },
      api: async () => {
        if (dead) return never;
        const real = wrap(actionsApi(() => w.octokit as unknown as Octokit, 'octo', 'demo'));
        return {
          ...real,
          cancelRun: (id) => (calls.push(`cancel ${id}`), real.cancelRun(id)),
          workflowRun: (id) => (calls.push(`get ${id}`), real.workflowRun(id)),
          workflowRunJobNames: (id) => (calls.push(`jobs ${id}`), real.workflowRunJobNames(id)),
        };
      },
      store,
      refs,
      fetchRefs: async (refspecs) => {
        if (dead) return never;
        await store.fetch(refspecs);
        counts.looks++;
      },
      pollMs: 50,
      ...(clock ? { clock: () => clock.now } : {}),
    });
    let runs = 0;
    /** Runs attempt 1 of `item` in a workspace of its own, as the driver does after a start (or a resume). */
    const start = async (item: string, signal = new AbortController().signal) => {
      runs += 1;
      const workspaceDir = join(dir, `workspace-${nth}-${item}-${runs}`);
      await mkdir(workspaceDir);
      const job = this.jobOf(item, workspaceDir);
      const outcome: { ended?: WorkerResult } = {};
      const done = target.run(job, signal).then((r) => (outcome.ended = r));
      return { done, outcome, workspaceDir, log: job.log };
    };
    /** Waits until the target looked at the attempt's refs `times` times from now (whole looks begun after this call), or ended it. */
    const looked = async (times: number, what: string, outcome: { ended?: unknown }, within?: number) => {
      const before = counts.looks;
      await eventually(`the target to look at ${what} ${times} times`, () => outcome.ended !== undefined || counts.looks >= before + times, { within });
    };
    return { target, store, start, looked, calls, die: () => void (dead = true) };
  }
}
