/** The simulator's in-memory model of GitHub objects (git data itself lives in bare repos on disk). */
import type { KeyObject } from 'node:crypto';
import type { Permissions } from './auth.js';
import type { BareRepo } from './git.js';

export interface User {
  id: number;
  login: string;
  type: 'User' | 'Organization' | 'Bot';
}

export interface App {
  id: number;
  slug: string;
  name: string;
  clientId: string;
  publicKey: KeyObject;
  privateKey: string;
  webhookUrl: string;
  webhookSecret: string;
  permissions: Permissions;
  events: string[];
  owner: User;
  bot: User;
  createdAt: string;
}

export interface Installation {
  id: number;
  appId: number;
  account: User;
  repositories: Set<string>;
  createdAt: string;
}

export interface Repo {
  id: number;
  owner: User;
  name: string;
  fullName: string;
  defaultBranch: string;
  git: BareRepo;
  createdAt: string;
  pushedAt: string;
  nextNumber: number;
  /** The repository's "immutable releases" setting: a release published while it is on never changes its assets or tag. */
  immutableReleases?: boolean;
  /** The repository's Actions secrets (Settings → Secrets and variables → Actions), by name: the jobs' `secrets` context. */
  actionsSecrets?: Map<string, string>;
}

export type CheckStatus = 'queued' | 'in_progress' | 'completed' | 'waiting' | 'requested' | 'pending';

export interface CheckSuite {
  id: number;
  repo: string;
  appId: number;
  headSha: string;
  headBranch: string | null;
  before: string | null;
  after: string | null;
  status: CheckStatus;
  conclusion: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface CheckAnnotation {
  path: string;
  start_line: number;
  end_line: number;
  start_column?: number;
  end_column?: number;
  annotation_level: string;
  message: string;
  title?: string;
  raw_details?: string;
}

export interface CheckAction {
  label: string;
  description: string;
  identifier: string;
}

export interface CheckRun {
  id: number;
  suiteId: number;
  repo: string;
  appId: number;
  name: string;
  headSha: string;
  status: CheckStatus;
  conclusion: string | null;
  startedAt: string;
  completedAt: string | null;
  detailsUrl: string | null;
  externalId: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
  annotations: CheckAnnotation[];
  actions: CheckAction[];
}

export interface Pull {
  id: number;
  number: number;
  repo: string;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  headRef: string;
  baseRef: string;
  headSha: string;
  baseSha: string;
  user: User;
  draft: boolean;
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
}

export interface Asset {
  id: number;
  releaseId: number;
  name: string;
  label: string | null;
  contentType: string;
  data: Buffer;
  uploader: User;
  createdAt: string;
  downloadCount: number;
  /**
   * An asset whose upload has not completed is not `uploaded` (GitHub's OpenAPI description allows `open`;
   * people report `starter` and `new` too, which the strict contract check would refuse); absent:
   * `uploaded`. Only a test sets it, through the domain model, to stand for an upload cut short.
   */
  state?: 'open' | 'uploaded';
}

export interface Release {
  id: number;
  repo: string;
  tagName: string;
  targetCommitish: string;
  name: string | null;
  body: string | null;
  draft: boolean;
  prerelease: boolean;
  author: User;
  createdAt: string;
  publishedAt: string | null;
  assets: Asset[];
  /** Published while the repository had immutable releases on: no asset may be added or deleted. */
  immutable: boolean;
}

/** A recorded `workflow_dispatch` or `repository_dispatch`. */
export interface DispatchRecord {
  kind: 'workflow_dispatch' | 'repository_dispatch';
  repo: string;
  installationId: number;
  workflowId?: string;
  ref?: string;
  inputs?: Record<string, unknown>;
  eventType?: string;
  clientPayload?: Record<string, unknown>;
  at: string;
}

/** Everything the simulator knows, keyed for lookup. */
export class SimState {
  private nextIdValue = 1000;
  readonly users = new Map<string, User>();
  readonly apps = new Map<number, App>();
  readonly installations = new Map<number, Installation>();
  readonly repos = new Map<string, Repo>();
  readonly checkSuites = new Map<number, CheckSuite>();
  readonly checkRuns = new Map<number, CheckRun>();
  readonly pulls = new Map<string, Pull>();
  readonly releases = new Map<number, Release>();
  readonly assets = new Map<number, Asset>();
  readonly dispatches: DispatchRecord[] = [];

  nextId(): number {
    return this.nextIdValue++;
  }

  user(login: string, type: User['type'] = 'User'): User {
    let u = this.users.get(login);
    if (!u) {
      u = { id: this.nextId(), login, type };
      this.users.set(login, u);
    }
    return u;
  }

  pull(repo: string, number: number): Pull | undefined {
    return this.pulls.get(`${repo}#${number}`);
  }

  pullsOf(repo: string): Pull[] {
    return [...this.pulls.values()].filter((p) => p.repo === repo);
  }

  /** The installation of `appId` that covers `repo`, if any. */
  installationFor(appId: number, repo: string): Installation | undefined {
    return [...this.installations.values()].find((i) => i.appId === appId && i.repositories.has(repo));
  }

  /** Every installation that covers `repo` (one per app). */
  installationsOn(repo: string): Installation[] {
    return [...this.installations.values()].filter((i) => i.repositories.has(repo));
  }
}
