/**
 * GitHub's JSON shapes for the objects the simulator serves, built from its state. REST shapes
 * follow the OpenAPI description (checked by the contract validator); webhook shapes follow
 * @octokit/webhooks-schemas, which forbid unknown properties, so they are built separately.
 */
import type { App, Asset, CheckRun, CheckSuite, Installation, Pull, Release, Repo, User } from './state.js';
import type { CommitInfo } from './git.js';

/** Base URLs the shapes point into. */
export interface Urls {
  api: string;
  html: string;
  uploads: string;
  git: string;
  /** The other host asset downloads are redirected to (objects.githubusercontent.com on GitHub). */
  objects: string;
}

const EPOCH = '2011-01-26T19:01:12Z';
export const nodeId = (kind: string, id: number | string): string => Buffer.from(`${kind}:${id}`).toString('base64').replace(/=+$/, '');

export function userJson(u: User, urls: Urls): Record<string, unknown> {
  const api = `${urls.api}/users/${u.login}`;
  return {
    login: u.login,
    id: u.id,
    node_id: nodeId(u.type, u.id),
    avatar_url: `${urls.html}/avatars/u/${u.id}?v=4`,
    gravatar_id: '',
    url: api,
    html_url: `${urls.html}/${u.login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: u.type,
    site_admin: false,
  };
}

function repoUrls(r: Repo, urls: Urls): Record<string, unknown> {
  const a = `${urls.api}/repos/${r.fullName}`;
  return {
    html_url: `${urls.html}/${r.fullName}`,
    url: a,
    forks_url: `${a}/forks`,
    keys_url: `${a}/keys{/key_id}`,
    collaborators_url: `${a}/collaborators{/collaborator}`,
    teams_url: `${a}/teams`,
    hooks_url: `${a}/hooks`,
    issue_events_url: `${a}/issues/events{/number}`,
    events_url: `${a}/events`,
    assignees_url: `${a}/assignees{/user}`,
    branches_url: `${a}/branches{/branch}`,
    tags_url: `${a}/tags`,
    blobs_url: `${a}/git/blobs{/sha}`,
    git_tags_url: `${a}/git/tags{/sha}`,
    git_refs_url: `${a}/git/refs{/sha}`,
    trees_url: `${a}/git/trees{/sha}`,
    statuses_url: `${a}/statuses/{sha}`,
    languages_url: `${a}/languages`,
    stargazers_url: `${a}/stargazers`,
    contributors_url: `${a}/contributors`,
    subscribers_url: `${a}/subscribers`,
    subscription_url: `${a}/subscription`,
    commits_url: `${a}/commits{/sha}`,
    git_commits_url: `${a}/git/commits{/sha}`,
    comments_url: `${a}/comments{/number}`,
    issue_comment_url: `${a}/issues/comments{/number}`,
    contents_url: `${a}/contents/{+path}`,
    compare_url: `${a}/compare/{base}...{head}`,
    merges_url: `${a}/merges`,
    archive_url: `${a}/{archive_format}{/ref}`,
    downloads_url: `${a}/downloads`,
    issues_url: `${a}/issues{/number}`,
    pulls_url: `${a}/pulls{/number}`,
    milestones_url: `${a}/milestones{/number}`,
    notifications_url: `${a}/notifications{?since,all,participating}`,
    labels_url: `${a}/labels{/name}`,
    releases_url: `${a}/releases{/id}`,
    deployments_url: `${a}/deployments`,
  };
}

/** The common core of every repository shape. */
function repoCore(r: Repo, urls: Urls): Record<string, unknown> {
  return {
    id: r.id,
    node_id: nodeId('Repository', r.id),
    name: r.name,
    full_name: r.fullName,
    private: true,
    owner: userJson(r.owner, urls),
    description: null,
    fork: false,
    ...repoUrls(r, urls),
  };
}

function repoCounts(r: Repo, urls: Urls): Record<string, unknown> {
  return {
    git_url: `${urls.git}/${r.fullName}.git`.replace(/^http/, 'git'),
    ssh_url: `git@127.0.0.1:${r.fullName}.git`,
    clone_url: `${urls.git}/${r.fullName}.git`,
    svn_url: `${urls.html}/${r.fullName}`,
    homepage: null,
    size: 0,
    stargazers_count: 0,
    watchers_count: 0,
    language: null,
    has_issues: true,
    has_projects: true,
    has_downloads: true,
    has_wiki: true,
    has_pages: false,
    has_discussions: false,
    forks_count: 0,
    mirror_url: null,
    archived: false,
    disabled: false,
    open_issues_count: 0,
    license: null,
    forks: 0,
    open_issues: 0,
    watchers: 0,
    default_branch: r.defaultBranch,
    is_template: false,
    web_commit_signoff_required: false,
    topics: [],
    visibility: 'private',
  };
}

/** `full-repository` (GET /repos/{owner}/{repo}). */
export function fullRepoJson(r: Repo, urls: Urls): Record<string, unknown> {
  return {
    ...repoCore(r, urls),
    ...repoCounts(r, urls),
    created_at: r.createdAt,
    updated_at: r.pushedAt,
    pushed_at: r.pushedAt,
    network_count: 0,
    subscribers_count: 0,
    allow_forking: true,
    permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
  };
}

/** `minimal-repository` (inside check suites, installation token responses, …). */
export function minimalRepoJson(r: Repo, urls: Urls): Record<string, unknown> {
  return { ...repoCore(r, urls), ...repoCounts(r, urls), created_at: r.createdAt, updated_at: r.pushedAt, pushed_at: r.pushedAt };
}

/** The `repository` object of webhook payloads (exactly the webhook schema's properties). */
export function webhookRepoJson(r: Repo, urls: Urls, timestampsAsNumbers = false): Record<string, unknown> {
  const ts = (iso: string): string | number => (timestampsAsNumbers ? Math.floor(Date.parse(iso) / 1000) : iso);
  return {
    ...repoCore(r, urls),
    created_at: ts(r.createdAt),
    updated_at: r.pushedAt,
    pushed_at: ts(r.pushedAt),
    ...repoCounts(r, urls),
    custom_properties: {},
  };
}

export function appJson(app: App, urls: Urls, installationsCount?: number): Record<string, unknown> {
  const json: Record<string, unknown> = {
    id: app.id,
    slug: app.slug,
    client_id: app.clientId,
    node_id: nodeId('Integration', app.id),
    owner: userJson(app.owner, urls),
    name: app.name,
    description: null,
    external_url: `${urls.html}/apps/${app.slug}`,
    html_url: `${urls.html}/apps/${app.slug}`,
    created_at: app.createdAt,
    updated_at: app.createdAt,
    permissions: app.permissions,
    events: app.events,
  };
  if (installationsCount !== undefined) json.installations_count = installationsCount;
  return json;
}

/** The `app` object inside webhook payloads (check_run.app etc.). */
export function webhookAppJson(app: App, urls: Urls): Record<string, unknown> {
  return {
    id: app.id,
    slug: app.slug,
    node_id: nodeId('Integration', app.id),
    owner: userJson(app.owner, urls),
    name: app.name,
    description: null,
    external_url: `${urls.html}/apps/${app.slug}`,
    html_url: `${urls.html}/apps/${app.slug}`,
    created_at: app.createdAt,
    updated_at: app.createdAt,
    permissions: app.permissions,
    events: app.events,
  };
}

export function installationJson(inst: Installation, app: App, urls: Urls): Record<string, unknown> {
  return {
    id: inst.id,
    account: userJson(inst.account, urls),
    repository_selection: 'selected',
    access_tokens_url: `${urls.api}/app/installations/${inst.id}/access_tokens`,
    repositories_url: `${urls.api}/installation/repositories`,
    html_url: `${urls.html}/settings/installations/${inst.id}`,
    app_id: app.id,
    app_slug: app.slug,
    target_id: inst.account.id,
    target_type: inst.account.type === 'Organization' ? 'Organization' : 'User',
    permissions: app.permissions,
    events: app.events,
    created_at: inst.createdAt,
    updated_at: inst.createdAt,
    single_file_name: null,
    has_multiple_single_files: false,
    single_file_paths: [],
    suspended_by: null,
    suspended_at: null,
  };
}

const shortSha = (s: string): string => s.slice(0, 7);

export function checkSuiteJson(
  s: CheckSuite,
  app: App,
  repo: Repo,
  head: CommitInfo,
  runsCount: number,
  pulls: Record<string, unknown>[],
  urls: Urls,
): Record<string, unknown> {
  return {
    id: s.id,
    node_id: nodeId('CheckSuite', s.id),
    head_branch: s.headBranch,
    head_sha: s.headSha,
    status: s.status,
    conclusion: s.conclusion,
    url: `${urls.api}/repos/${s.repo}/check-suites/${s.id}`,
    before: s.before,
    after: s.after,
    pull_requests: pulls,
    app: appJson(app, urls),
    repository: minimalRepoJson(repo, urls),
    created_at: s.createdAt,
    updated_at: s.updatedAt,
    head_commit: simpleCommitJson(head),
    latest_check_runs_count: runsCount,
    check_runs_url: `${urls.api}/repos/${s.repo}/check-suites/${s.id}/check-runs`,
    rerequestable: true,
    runs_rerequestable: true,
  };
}

/** `simple-commit` (a suite's head_commit). */
export function simpleCommitJson(c: CommitInfo): Record<string, unknown> {
  return {
    id: c.sha,
    tree_id: c.tree,
    message: c.message.replace(/\n$/, ''),
    timestamp: c.committer.date ?? EPOCH,
    author: { name: c.author.name, email: c.author.email },
    committer: { name: c.committer.name, email: c.committer.email },
  };
}

/** `pull-request-minimal`, as listed in check runs and suites. */
export function pullMinimalJson(p: Pull, repo: Repo, urls: Urls): Record<string, unknown> {
  const repoRef = { id: repo.id, url: `${urls.api}/repos/${repo.fullName}`, name: repo.name };
  return {
    id: p.id,
    number: p.number,
    url: `${urls.api}/repos/${p.repo}/pulls/${p.number}`,
    head: { ref: p.headRef, sha: p.headSha, repo: repoRef },
    base: { ref: p.baseRef, sha: p.baseSha, repo: repoRef },
  };
}

export function checkRunJson(run: CheckRun, suite: CheckSuite, app: App, pulls: Record<string, unknown>[], urls: Urls): Record<string, unknown> {
  const base = `${urls.api}/repos/${run.repo}/check-runs/${run.id}`;
  return {
    id: run.id,
    node_id: nodeId('CheckRun', run.id),
    head_sha: run.headSha,
    external_id: run.externalId ?? '',
    url: base,
    html_url: `${urls.html}/${run.repo}/runs/${run.id}`,
    details_url: run.detailsUrl ?? `${urls.html}/${run.repo}/runs/${run.id}`,
    status: run.status,
    conclusion: run.conclusion,
    started_at: run.startedAt,
    completed_at: run.completedAt,
    output: {
      title: run.output.title,
      summary: run.output.summary,
      text: run.output.text,
      annotations_count: run.annotations.length,
      annotations_url: `${base}/annotations`,
    },
    name: run.name,
    check_suite: { id: suite.id },
    app: appJson(app, urls),
    pull_requests: pulls,
  };
}

function pullLinks(p: Pull, urls: Urls): Record<string, unknown> {
  const a = `${urls.api}/repos/${p.repo}`;
  return {
    self: { href: `${a}/pulls/${p.number}` },
    html: { href: `${urls.html}/${p.repo}/pull/${p.number}` },
    issue: { href: `${a}/issues/${p.number}` },
    comments: { href: `${a}/issues/${p.number}/comments` },
    review_comments: { href: `${a}/pulls/${p.number}/comments` },
    review_comment: { href: `${a}/pulls/comments{/number}` },
    commits: { href: `${a}/pulls/${p.number}/commits` },
    statuses: { href: `${a}/statuses/${p.headSha}` },
  };
}

/** `pull-request-simple` (list) or, with `full`, `pull-request` (get/create and webhooks). */
export function pullJson(
  p: Pull,
  repo: Repo,
  urls: Urls,
  full: { commits: number; additions: number; deletions: number; changedFiles: number } | null,
  repoShape: (r: Repo) => Record<string, unknown> = (r) => fullRepoJson(r, urls),
): Record<string, unknown> {
  const a = `${urls.api}/repos/${p.repo}`;
  const side = (ref: string, sha: string): Record<string, unknown> => ({
    label: `${repo.owner.login}:${ref}`,
    ref,
    sha,
    user: userJson(repo.owner, urls),
    repo: repoShape(repo),
  });
  const json: Record<string, unknown> = {
    url: `${a}/pulls/${p.number}`,
    id: p.id,
    node_id: nodeId('PullRequest', p.id),
    html_url: `${urls.html}/${p.repo}/pull/${p.number}`,
    diff_url: `${urls.html}/${p.repo}/pull/${p.number}.diff`,
    patch_url: `${urls.html}/${p.repo}/pull/${p.number}.patch`,
    issue_url: `${a}/issues/${p.number}`,
    number: p.number,
    state: p.state,
    locked: false,
    title: p.title,
    user: userJson(p.user, urls),
    body: p.body,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
    closed_at: p.closedAt,
    merged_at: null,
    merge_commit_sha: null,
    assignee: null,
    assignees: [],
    requested_reviewers: [],
    requested_teams: [],
    labels: [],
    milestone: null,
    draft: p.draft,
    commits_url: `${a}/pulls/${p.number}/commits`,
    review_comments_url: `${a}/pulls/${p.number}/comments`,
    review_comment_url: `${a}/pulls/comments{/number}`,
    comments_url: `${a}/issues/${p.number}/comments`,
    statuses_url: `${a}/statuses/${p.headSha}`,
    head: side(p.headRef, p.headSha),
    base: side(p.baseRef, p.baseSha),
    _links: pullLinks(p, urls),
    author_association: 'OWNER',
    auto_merge: null,
    active_lock_reason: null,
  };
  if (full) {
    Object.assign(json, {
      merged: false,
      mergeable: null,
      rebaseable: null,
      mergeable_state: 'unknown',
      merged_by: null,
      comments: 0,
      review_comments: 0,
      maintainer_can_modify: false,
      commits: full.commits,
      additions: full.additions,
      deletions: full.deletions,
      changed_files: full.changedFiles,
    });
  }
  return json;
}

export function assetJson(a: Asset, rel: Release, urls: Urls): Record<string, unknown> {
  return {
    url: `${urls.api}/repos/${rel.repo}/releases/assets/${a.id}`,
    browser_download_url: `${urls.html}/${rel.repo}/releases/download/${encodeURIComponent(rel.tagName)}/${encodeURIComponent(a.name)}`,
    id: a.id,
    node_id: nodeId('ReleaseAsset', a.id),
    name: a.name,
    label: a.label,
    state: a.state ?? 'uploaded',
    content_type: a.contentType,
    size: a.data.length,
    digest: null,
    download_count: a.downloadCount,
    created_at: a.createdAt,
    updated_at: a.createdAt,
    uploader: userJson(a.uploader, urls),
  };
}

export function releaseJson(rel: Release, urls: Urls): Record<string, unknown> {
  const a = `${urls.api}/repos/${rel.repo}/releases/${rel.id}`;
  return {
    url: a,
    html_url: `${urls.html}/${rel.repo}/releases/tag/${encodeURIComponent(rel.tagName)}`,
    assets_url: `${a}/assets`,
    upload_url: `${urls.uploads}/repos/${rel.repo}/releases/${rel.id}/assets{?name,label}`,
    tarball_url: `${urls.api}/repos/${rel.repo}/tarball/${encodeURIComponent(rel.tagName)}`,
    zipball_url: `${urls.api}/repos/${rel.repo}/zipball/${encodeURIComponent(rel.tagName)}`,
    id: rel.id,
    node_id: nodeId('Release', rel.id),
    tag_name: rel.tagName,
    target_commitish: rel.targetCommitish,
    name: rel.name,
    body: rel.body,
    draft: rel.draft,
    prerelease: rel.prerelease,
    immutable: rel.immutable,
    created_at: rel.createdAt,
    published_at: rel.publishedAt,
    author: userJson(rel.author, urls),
    assets: rel.assets.map((x) => assetJson(x, rel, urls)),
  };
}

/** `git-commit` (GET/POST git/commits). */
export function gitCommitJson(c: CommitInfo, repo: string, urls: Urls): Record<string, unknown> {
  const a = `${urls.api}/repos/${repo}/git`;
  return {
    sha: c.sha,
    node_id: nodeId('Commit', c.sha),
    url: `${a}/commits/${c.sha}`,
    html_url: `${urls.html}/${repo}/commit/${c.sha}`,
    author: { name: c.author.name, email: c.author.email, date: c.author.date ?? EPOCH },
    committer: { name: c.committer.name, email: c.committer.email, date: c.committer.date ?? EPOCH },
    tree: { sha: c.tree, url: `${a}/trees/${c.tree}` },
    message: c.message.replace(/\n$/, ''),
    parents: c.parents.map((p) => ({ sha: p, url: `${a}/commits/${p}`, html_url: `${urls.html}/${repo}/commit/${p}` })),
    verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
  };
}

/** `commit` (pulls list commits). */
export function commitJson(c: CommitInfo, repo: string, urls: Urls): Record<string, unknown> {
  const a = `${urls.api}/repos/${repo}`;
  return {
    url: `${a}/commits/${c.sha}`,
    sha: c.sha,
    node_id: nodeId('Commit', c.sha),
    html_url: `${urls.html}/${repo}/commit/${c.sha}`,
    comments_url: `${a}/commits/${c.sha}/comments`,
    commit: {
      url: `${a}/git/commits/${c.sha}`,
      author: { name: c.author.name, email: c.author.email, date: c.author.date ?? EPOCH },
      committer: { name: c.committer.name, email: c.committer.email, date: c.committer.date ?? EPOCH },
      message: c.message.replace(/\n$/, ''),
      comment_count: 0,
      tree: { sha: c.tree, url: `${a}/git/trees/${c.tree}` },
      verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
    },
    author: null,
    committer: null,
    parents: c.parents.map((p) => ({ sha: p, url: `${a}/commits/${p}`, html_url: `${urls.html}/${repo}/commit/${p}` })),
  };
}

export function gitRefJson(ref: string, sha: string, type: string, repo: string, urls: Urls): Record<string, unknown> {
  const a = `${urls.api}/repos/${repo}/git`;
  return {
    ref,
    node_id: nodeId('Ref', `${repo}:${ref}`),
    url: `${a}/${ref}`,
    object: { sha, type, url: `${a}/${type}s/${sha}` },
  };
}

export { shortSha };
