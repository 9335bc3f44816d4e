/**
 * The shapes a workspace is handled in (workspace.ts materialises, captures and re-targets one; the
 * modules it uses share these types without importing it).
 */
import type { LocalGitStore } from './local-store.js';
import type { TreeChange, TreeChangeSide } from './tree-diff.js';
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
  /** The directories, files and submodules of `commit`'s tree, once git listed them. */
  readonly layout?: TreeLayout;
  /** The stat data of the workspace as it was last made exact (see workspace-stamps.ts). */
  readonly stamps?: WorkspaceStamps;
  /**
   * Entries the private index file does not have yet: a move that wrote its files in-process leaves them
   * to the next git step that reads the index (workspace-move.ts). Absent or empty: the index is current.
   */
  readonly indexBehind?: IndexBehind;
}

/** Index entries by path: the entry to put there, or null where the path is to go from the index. */
export type IndexBehind = ReadonlyMap<string, TreeChangeSide | null>;

/** The directories (trees) and submodule entries (gitlinks) of a tree, as paths. */
export interface TreeLayout {
  readonly dirs: readonly string[];
  /** Every file and link, by path: its mode, type and object id as `git ls-tree` gives them. */
  readonly files: ReadonlyMap<string, string>;
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
  /** What the comparison with the workspace's stamps found, when the capture was made from one. */
  survey?: WorkspaceSurvey;
}

/** The stat data a stamp compares. */
export interface Stamp {
  readonly ino: number;
  readonly mode: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

/** Stamps of a workspace: its root (''), every directory and every file or link of its base. */
export interface WorkspaceStamps {
  readonly stamps: ReadonlyMap<string, Stamp>;
  /** The ctime of the marker written after the stamps: a stamp whose ctime is not earlier is racy. */
  readonly racyFrom: number;
}

/** What one pass over a workspace's stamps found a worker touched. */
export interface WorkspaceSurvey {
  /** Tracked files and links whose stat data changed (or that are gone, or racy): git checks these. */
  readonly touched: readonly string[];
  /**
   * What is in the changed directories and not in the base: every untracked path at its top, a directory
   * as `dir/` (what `git ls-files --others --directory` lists with no exclude rules).
   */
  readonly untracked: readonly string[];
  /** Directories whose entries may have changed ('' for the root). */
  readonly changedDirs: readonly string[];
}
