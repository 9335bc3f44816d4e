/** The git storage adapter: the local store, ref locking, tree surgery and diffs, and workspaces. */
export type { CommitData, GitStore, Identity, Oid, TreeEntry, TreeEntryMode } from './types.js';
export { LocalGitStore, openLocalStore, sortTreeEntries, typeForMode } from './local-store.js';
export { assertRefName, isOid, type RefLockOptions } from './ref-lock.js';
export { agoraIdentity } from './identity.js';
export { applyTreeChanges, EMPTY_TREE, type PathChange } from './tree-edit.js';
export { diffTrees, type TreeChange, type TreeChangeSide } from './tree-diff.js';
export { GitCommandError, gitCliAvailable, runGit, runGitSequence, type GitInvocation, type GitStep } from './git-cli.js';
export {
  captureWorkspace,
  materializeWorkspace,
  removeWorkspace,
  type Workspace,
  type WorkspaceMethod,
  type WorkspaceOptions,
} from './workspace.js';
