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
import { RunRefs } from '../../src/runs/refs.js';
import { cleanupTempDirs, makeRepo } from '../support/repo.js';

afterAll(cleanupTempDirs);

/** What another serve does with the submission right after it lands (set by each test). */
const meanwhile = vi.hoisted(() => ({
  step: undefined as undefined | ((store: GitStore, refs: RunRefs, runId: string) => Promise<void>),
  /** Before each pass of the server over the inbox (`acceptInbox`). */
  beforePass: undefined as undefined | ((store: GitStore, refs: RunRefs) => Promise<void>),
}));

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

beforeEach(() => {
  meanwhile.step = undefined;
  meanwhile.beforePass = undefined;
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
    await expect(runVerb(join(repo, 'plan.json'), { repo }, output())).rejects.toMatchObject({ code: 'run-not-found' });
  });

  it('says the submission is gone when it was withdrawn after run looked, before its server took it', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    let withdrawn = false;
    meanwhile.beforePass = async (store, refs) => {
      if (withdrawn) return;
      withdrawn = true;
      expect(await cancelRun(store, refs, 'p-1', 'not after all', () => Date.now())).toMatchObject({ kind: 'withdrawn' });
    };
    await expect(runVerb(join(repo, 'plan.json'), { repo }, output())).rejects.toMatchObject({ code: 'run-not-found' });
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
