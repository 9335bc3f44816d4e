import type { OrphanSecretStores } from '../runs/orphan-secret-stores.js';
import type { ServerOptions } from '../runs/server.js';
import type { LeftoverWithdrawals } from '../runs/withdrawal.js';
import type { Output } from './output.js';
import { terminalSafe } from './terminal-text.js';

/**
 * What a serving process (`orch serve`, `orch run`) says on stderr besides its transitions: a run's
 * warnings, a target it could not reach, and what it removed of this host's secret parameters that nothing
 * names any more. Every text a repository or a worker controls goes through terminalSafe.
 */
export function serverReports(io: Output): Pick<ServerOptions, 'onWarning' | 'onTargetWarning' | 'onLeftoverWithdrawals' | 'onOrphanSecretStores'> {
  return {
    onWarning: (runId, message) => io.err(`${terminalSafe(runId)}: warning: ${terminalSafe(message)}`),
    onTargetWarning: (message) => io.err(`agora: warning: ${terminalSafe(message)}`),
    onLeftoverWithdrawals: (leftovers) => reportLeftovers(leftovers, io),
    onOrphanSecretStores: (found) => reportOrphanSecretStores(found, io),
  };
}

/** What finishing the withdrawals an earlier cancel left did (src/runs/withdrawal.ts), on stderr. */
export function reportLeftovers(leftovers: LeftoverWithdrawals, io: Output): void {
  for (const problem of leftovers.problems) io.err(`agora: warning: ${terminalSafe(problem)}`);
  for (const id of leftovers.removed) {
    io.err(`agora: removed the secret parameters of ${id} from this host (a withdrawal left unfinished)`);
  }
}

/** What a serve's look for secret stores a killed submit left (src/runs/orphan-secret-stores.ts) removed, on stderr. */
function reportOrphanSecretStores(found: OrphanSecretStores, io: Output): void {
  for (const problem of found.problems) io.err(`agora: warning: ${terminalSafe(problem)}`);
  for (const id of found.removed) {
    io.err(`agora: removed the secret parameters of ${id} from this host (nothing in the repository names them, and their submit is gone)`);
  }
  for (const path of found.removedTemporary) {
    io.err(`agora: removed ${terminalSafe(path)} from this host (secret parameters a submit was writing when it died)`);
  }
}
