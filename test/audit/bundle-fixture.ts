import { cpSync } from 'node:fs';
import { entryHash, GENESIS_HASH, type AuditEntry } from '../../src/log/entry.js';
import type { AuditBundle } from '../../src/audit/bundle.js';
import { merkleRootHex } from '../../src/log/merkle.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { RunRefs } from '../../src/runs/refs.js';
import { agora, makeRepo, tempDir } from '../support/repo.js';

/** A real finished run: the offload-fanout example (4 items, 3 in parallel, then one that depends on them). */
export interface FinishedRun {
  repo: string;
  runId: string;
  store: LocalGitStore;
  refs: RunRefs;
}

export async function finishedRun(): Promise<FinishedRun> {
  const repo = makeRepo({}, 'offload-fanout');
  const r = await agora(repo, ['orch', 'run', 'plan.json']);
  if (r.code !== 0) throw new Error(`the example run failed: ${r.stderr}`);
  return { repo, runId: 'fanout-1-1', store: await openLocalStore(repo), refs: new RunRefs() };
}

/** A copy of the run's repository (to tamper with) and a store over it. */
export async function copyRun(run: FinishedRun): Promise<FinishedRun> {
  const repo = tempDir('agora-tamper-');
  cpSync(run.repo, repo, { recursive: true });
  return { ...run, repo, store: await openLocalStore(repo) };
}

export function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Re-links and re-hashes `entries` from GENESIS (what a forger who edits the log must do) and sets the root. */
export function rechain(bundle: AuditBundle): AuditBundle {
  let prevHash = GENESIS_HASH;
  bundle.entries = bundle.entries.map((e, seq) => {
    const { hash: _old, ...rest } = e;
    const body = { ...rest, seq, prevHash } as Omit<AuditEntry, 'hash'>;
    const entry = { ...body, hash: entryHash(body) } as AuditEntry;
    prevHash = entry.hash;
    return entry;
  });
  bundle.root = merkleRootHex(bundle.entries.map((e) => e.hash));
  return bundle;
}
