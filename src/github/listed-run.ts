import { readListedRun, unreadableRunText } from '../runs/listed-run.js';
import type { StoredRun } from '../runs/state-store.js';
import type { AppState } from './app-state.js';
import { RecentKeys } from './recent-keys.js';
import type { RepoContext } from './repo-context.js';

/** Per app process, the unreadable run refs (name and value) already logged: the sweep meets them on every pass. */
const reported = new WeakMap<AppState, RecentKeys>();

/**
 * {@link readListedRun} for the App: an unreadable ref is logged as a warning, once per process for each
 * value it has.
 */
export function readAppRun(app: AppState, repo: RepoContext, runId: string): Promise<StoredRun | null> {
  return readListedRun(repo.store, repo.refs, runId, (u) => {
    let seen = reported.get(app);
    if (!seen) reported.set(app, (seen = new RecentKeys(1000)));
    const key = `${u.ref} ${u.oid ?? ''}`;
    if (seen.has(key)) return;
    seen.add(key);
    app.log.warn(`agora: ${unreadableRunText(u)}`);
  });
}
