/**
 * The shapes a workspace is handled in (workspace.ts materialises, captures and re-targets one; the
 * modules it uses share these types without importing it).
 */
import type { LocalGitStore } from './local-store.js';
import type { TreeChange } from './tree-diff.js';
import type { Oid } from './types.js';

/** How a workspace is materialised and captured. */
export type WorkspaceMethod = 'cli' | 'isomorphic-git';

/** A materialised commit: where it is, what it came from, and how it was made. */
export interface Workspace {
  readonly store: LocalGitStore;
  /** The commit that was materialised. */
  readonly commit: Oid;
  /** That commit's tree, the base that captures are compared against. */
  readonly baseTree: Oid;
  /** The workspace directory (absolute). */
  readonly dir: string;
  /** The private index file (outside `dir`; used by the CLI method). */
  readonly indexFile: string;
  readonly method: WorkspaceMethod;
  /** The directories and submodules of `commit`'s tree, once a re-target listed them. */
  readonly layout?: TreeLayout;
}

/** The directories (trees) and submodule entries (gitlinks) of a tree, as paths. */
export interface TreeLayout {
  readonly dirs: readonly string[];
  readonly gitlinks: readonly string[];
  /** False when a name was not UTF-8 (git's output is read as text): such a path cannot be looked up. */
  readonly exact: boolean;
}

/** Choice of method; by default the CLI when it is present and AGORA_GIT_CLI is not `0`. */
export interface WorkspaceOptions {
  method?: WorkspaceMethod;
  /** A directory of Agora's own (the pool) under which a non-empty leftover of a crashed attempt is cleared. */
  scratch?: string;
}

/** What a capture found. */
export interface WorkspaceCapture {
  /** The workspace as a tree (ignored untracked files left out). */
  tree: Oid;
  /** Its changes against the materialised commit's tree. */
  changes: TreeChange[];
  /**
   * Everything untracked the worker left (ignored files too; an untracked directory once, as `dir/`), as
   * the capture's one walk of the workspace found it; absent when the capture did not list it. A
   * re-target removes exactly these instead of walking the workspace again.
   */
  untracked?: readonly string[];
}
