/**
 * The installation permissions the app needs (app.yml), and what is missing from a token's grant. A
 * missing permission fails in a way GitHub words vaguely ("Resource not accessible by integration"), so
 * the app checks the grant of each installation token it gets and says which permission to add.
 */

type Level = 'read' | 'write';

/** What each permission is for (the check run and the log line say why it is needed). */
export const REQUIRED_PERMISSIONS: ReadonlyArray<{ name: string; level: Level; why: string }> = [
  { name: 'checks', level: 'write', why: 'the check runs of the run, its items and the gate' },
  { name: 'contents', level: 'write', why: 'fetching the plan, pushing refs/agora/* and the patch commits, the audit release' },
  { name: 'pull_requests', level: 'read', why: 'finding the pull requests whose head commits carry plans' },
  { name: 'metadata', level: 'read', why: 'reading the repository at all' },
];

/** `contents: write (granted: read) — pushing …` for each required permission the grant lacks. */
export function missingPermissions(granted: Readonly<Record<string, string | undefined>>): string[] {
  const rank = (l: string | undefined) => (l === 'write' || l === 'admin' ? 2 : l === 'read' ? 1 : 0);
  return REQUIRED_PERMISSIONS.filter((p) => rank(granted[p.name]) < rank(p.level)).map(
    (p) => `${p.name}: ${p.level} (granted: ${granted[p.name] ?? 'none'}) — needed for ${p.why}`,
  );
}

/** Whether the grant allows `name` at `level` (so the app knows whether it can say so in a check run). */
export function permits(granted: Readonly<Record<string, string | undefined>>, name: string, level: Level): boolean {
  const l = granted[name];
  return level === 'read' ? l === 'read' || l === 'write' || l === 'admin' : l === 'write' || l === 'admin';
}
