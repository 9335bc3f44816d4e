/**
 * `agora orch run` submits its plan, then serves it when no serve holds the repository. A serve that held it
 * may have taken the submission in between and ended it (rejected it, or run it to its end), then let go;
 * or `cancel` may have withdrawn it. `run` then reports that end instead of serving an id that no inbox
 * entry or running run holds any more, which it would wait for forever. The window is made to happen by running the other serve's step right
 * after the real submission; everything else is the real CLI code, in-process, on a real repository.
 */
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runVerb } from '../../src/cli/orch.js';
import type { Output } from '../../src/cli/output.js';
import { loadConfig } from '../../src/config/load.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore } from '../../src/git/local-store.js';
import type { GitStore } from '../../src/git/types.js';
import { cancelRun } from '../../src/runs/cancel.js';
import type * as Inbox from '../../src/runs/inbox.js';
import type * as Withdrawal from '../../src/runs/withdrawal.js';
import { RunRefs } from '../../src/runs/refs.js';
import { acquireServeLock } from '../../src/runs/serve-lock.js';
import { readRun } from '../../src/runs/state-store.js';
import { cleanupTempDirs, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** What another serve does with the submission right after it lands (set by each test). */
const meanwhile = vi.hoisted(() => ({
  step: undefined as undefined | ((store: GitStore, refs: RunRefs, runId: string) => Promise<void>),
  /** Before each pass of the server over the inbox (`acceptInbox`). */
  beforePass: undefined as undefined | ((store: GitStore, refs: RunRefs) => Promise<void>),
  /** Once, as the server starts: before it lists the runs (its first look for unfinished withdrawals). */
  atServerStart: undefined as undefined | ((store: GitStore, refs: RunRefs) => Promise<void>),
}));

vi.mock('../../src/runs/withdrawal.js', async (importOriginal) => {
  const real = await importOriginal<typeof Withdrawal>();
  return {
    ...real,
    finishWithdrawals: async (...args: Parameters<typeof real.finishWithdrawals>) => {
      const hook = meanwhile.atServerStart;
      meanwhile.atServerStart = undefined;
      await hook?.(args[0], args[1]);
      return real.finishWithdrawals(...args);
    },
  };
});

vi.mock('../../src/runs/inbox.js', async (importOriginal) => {
  const real = await importOriginal<typeof Inbox>();
  return {
    ...real,
    submitPlan: async (...args: Parameters<typeof real.submitPlan>) => {
      const submission = await real.submitPlan(...args);
      await meanwhile.step?.(args[0], args[1], submission.runId);
      return submission;
    },
    acceptInbox: async (...args: Parameters<typeof real.acceptInbox>) => {
      await meanwhile.beforePass?.(args[0], args[1]);
      return real.acceptInbox(...args);
    },
  };
});

const { acceptInbox } = await import('../../src/runs/inbox.js');
const real = await vi.importActual<typeof Inbox>('../../src/runs/inbox.js');

beforeEach(() => {
  meanwhile.step = undefined;
  meanwhile.beforePass = undefined;
  meanwhile.atServerStart = undefined;
});

const PLAN = JSON.stringify({
  id: 'p',
  queue: 'default',
  items: [{ id: 'a', executor: 'command', inputs: { run: 'true' }, depends_on: [], resourceLocks: [] }],
});

function output(): Output & { lines: string[] } {
  const lines: string[] = [];
  return { lines, tty: false, out: (t) => lines.push(t), err: (t) => lines.push(t) };
}

/** The other serve's pass over the inbox, with this repository's config. */
async function servePass(repo: string, store: GitStore, refs: RunRefs) {
  return acceptInbox(store, refs, await loadConfig({ cwd: repo }), join(store.gitdir, 'agora'), Date.now());
}

const WITHDRAWN = { code: 'run-not-found', message: expect.stringContaining('was withdrawn (agora orch cancel) before a serve accepted it') };

describe('orch run, when another serve ended its submission before it could serve it', () => {
  it('reports the run that serve ended, and serves nothing', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    meanwhile.step = async (store, refs, runId) => {
      expect(await servePass(repo, store, refs)).toMatchObject([{ runId, kind: 'accepted' }]);
      expect(await cancelRun(store, refs, runId, 'cancelled by someone else', () => Date.now())).toMatchObject({ kind: 'cancelled' });
    };
    const io = output();
    expect(await runVerb(join(repo, 'plan.json'), { repo }, io)).toBe(1);
    expect(io.lines.join('\n')).toContain('run p-1: cancelled — cancelled: cancelled by someone else');
    // Settled as any serve settles an ended run: its audit root anchored.
    const store = await openLocalStore(repo);
    expect(await store.resolveRef(new RunRefs().anchor('p-1'))).not.toBeNull();
  });

  it('says the submission is gone when it was withdrawn meanwhile', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    meanwhile.step = async (store, refs, runId) => {
      expect(await cancelRun(store, refs, runId, 'not after all', () => Date.now())).toMatchObject({ kind: 'withdrawn' });
    };
    await expect(runVerb(join(repo, 'plan.json'), { repo }, output())).rejects.toMatchObject(WITHDRAWN);
  });

  it('says the submission is gone when it was withdrawn after run looked, before its server took it', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    let withdrawn = false;
    meanwhile.beforePass = async (store, refs) => {
      if (withdrawn) return;
      withdrawn = true;
      expect(await cancelRun(store, refs, 'p-1', 'not after all', () => Date.now())).toMatchObject({ kind: 'withdrawn' });
    };
    await expect(runVerb(join(repo, 'plan.json'), { repo }, output())).rejects.toMatchObject(WITHDRAWN);
    expect(withdrawn).toBe(true);
  });

  it('reports the rejection that serve recorded', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    meanwhile.step = async (store, refs, runId) => {
      // Rejected for a reason only the serve sees: an anchor pushed under the id meanwhile.
      const who = agoraIdentity(Date.now());
      const anchor = await store.writeCommit({ tree: await store.writeTree([]), parents: [], message: 'anchor\n', author: who, committer: who });
      expect(await store.casRef(refs.anchor(runId), anchor, null)).toBe(true);
      expect(await servePass(repo, store, refs)).toMatchObject([{ runId, kind: 'rejected' }]);
    };
    await expect(runVerb(join(repo, 'plan.json'), { repo }, output())).rejects.toMatchObject({
      code: 'plan-invalid',
      message: expect.stringContaining('belongs to an anchored run'),
    });
  });
});

/** Another plan under the same plan id: what `submit` of it is given once the first is withdrawn. */
const OTHER = JSON.stringify({
  id: 'p',
  queue: 'default',
  items: [{ id: 'other', executor: 'command', inputs: { run: 'echo other > other.txt' }, depends_on: [], resourceLocks: ['other.txt'] }],
});

/** `cancel` withdraws the submission of `runId`, and a `submit` of {@link OTHER} is given the same id. */
async function withdrawAndReplace(store: GitStore, refs: RunRefs, runId: string) {
  expect(await cancelRun(store, refs, runId, 'not after all', () => Date.now())).toMatchObject({ kind: 'withdrawn' });
  const other = await real.submitPlan(store, refs, { planText: OTHER, planId: 'p', base: (await store.resolveRef('HEAD'))!, now: Date.now() });
  expect(other.runId).toBe(runId);
  return other;
}

const REPLACED = { code: 'run-not-found', message: expect.stringContaining('another submission took the id since') };

describe('orch run, when its submission was withdrawn and another submission took the id', () => {
  it('does not serve the other submission, taken before its server started', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    let other: Inbox.Submission | undefined;
    meanwhile.step = async (store, refs, runId) => {
      other = await withdrawAndReplace(store, refs, runId);
    };
    await expect(runVerb(join(repo, 'plan.json'), { repo }, output())).rejects.toMatchObject(REPLACED);
    const store = await openLocalStore(repo);
    const refs = new RunRefs();
    expect(await store.resolveRef(refs.run('p-1'))).toBeNull();
    expect(await store.resolveRef(refs.inbox('p-1'))).toBe(other!.inboxCommit);
  });

  it('does not serve the other submission, taken after run looked, before its server took its own', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    let other: Inbox.Submission | undefined;
    meanwhile.beforePass = async (store, refs) => {
      other ??= await withdrawAndReplace(store, refs, 'p-1');
    };
    await expect(runVerb(join(repo, 'plan.json'), { repo }, output())).rejects.toMatchObject(REPLACED);
    const store = await openLocalStore(repo);
    expect(await store.resolveRef(new RunRefs().run('p-1'))).toBeNull();
    expect(await store.resolveRef(new RunRefs().inbox('p-1'))).toBe(other!.inboxCommit);
  });

  /** Another serve accepts the other submission: before run looks, as its server starts, or at its first pass. */
  const acceptedElsewhere = [
    ['before run looked', 'step'],
    ['as its server started', 'atServerStart'],
    ['while its server waited for its own', 'beforePass'],
  ] as const;
  it.each(acceptedElsewhere)("does not drive the other submission's run, which another serve accepted %s", async (_, when) => {
    const repo = makeRepo({ 'plan.json': PLAN });
    let replaced = false;
    meanwhile[when] = async (store: GitStore, refs: RunRefs) => {
      if (replaced) return;
      replaced = true;
      await withdrawAndReplace(store, refs, 'p-1');
      expect(await servePass(repo, store, refs)).toMatchObject([{ runId: 'p-1', kind: 'accepted' }]);
    };
    await expect(runVerb(join(repo, 'plan.json'), { repo }, output())).rejects.toMatchObject(REPLACED);
    expect(replaced).toBe(true);
    // Left as that serve accepted it: nothing of it was started here.
    const run = await readRun(await openLocalStore(repo), new RunRefs(), 'p-1');
    expect(run?.state.status).toBe('running');
    expect(run?.state.items['other']).toMatchObject({ status: 'pending', attempts: 0 });
  });

  it("does not report the other submission's run as its own when it follows a serve", async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const store = await openLocalStore(repo);
    // A serve holds the repository (this process): run follows its submission rather than serve it.
    const lock = await acquireServeLock(store.gitdir, Date.now());
    try {
      meanwhile.step = async (store, refs, runId) => {
        await withdrawAndReplace(store, refs, runId);
        expect(await servePass(repo, store, refs)).toMatchObject([{ runId, kind: 'accepted' }]);
        expect(await cancelRun(store, refs, runId, 'the other plan, cancelled', () => Date.now())).toMatchObject({ kind: 'cancelled' });
      };
      const io = output();
      await expect(runVerb(join(repo, 'plan.json'), { repo, pollMs: 20 }, io)).rejects.toMatchObject(REPLACED);
      expect(io.lines.join('\n')).toContain('watching it');
      expect(io.lines.join('\n')).not.toContain('the other plan, cancelled');
    } finally {
      await lock.release();
    }
  });

  it('follows its own run through a serve that accepted it, and says a withdrawal it follows', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const store = await openLocalStore(repo);
    const lock = await acquireServeLock(store.gitdir, Date.now());
    try {
      meanwhile.step = async (store, refs, runId) => {
        expect(await servePass(repo, store, refs)).toMatchObject([{ runId, kind: 'accepted' }]);
        expect(await cancelRun(store, refs, runId, 'its own, cancelled', () => Date.now())).toMatchObject({ kind: 'cancelled' });
      };
      const io = output();
      expect(await runVerb(join(repo, 'plan.json'), { repo, pollMs: 20 }, io)).toBe(1);
      expect(io.lines.join('\n')).toContain('run p-1: cancelled — cancelled: its own, cancelled');
      meanwhile.step = async (store, refs, runId) => {
        expect(await cancelRun(store, refs, runId, 'not after all', () => Date.now())).toMatchObject({ kind: 'withdrawn' });
      };
      await expect(runVerb(join(repo, 'plan.json'), { repo, pollMs: 20 }, output())).rejects.toMatchObject(WITHDRAWN);
    } finally {
      await lock.release();
    }
  });

  it('says so at once while it waits for another orch run, not once that run has ended', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    const store = await openLocalStore(repo);
    // Another `agora orch run` (this process) holds the repository for its own run, and never lets go here.
    const lock = await acquireServeLock(store.gitdir, Date.now(), 'first-1');
    try {
      meanwhile.step = async (store, refs, runId) => {
        await withdrawAndReplace(store, refs, runId);
      };
      await expect(runVerb(join(repo, 'plan.json'), { repo, pollMs: 20 }, output())).rejects.toMatchObject(REPLACED);
    } finally {
      await lock.release();
    }
  });
});
