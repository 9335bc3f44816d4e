/**
 * Resource keys: lock keys that name something other than a repository path — a deployment, a database,
 * a device — written `resource:<name>`, where the name is one or more `/`-separated components
 * (`resource:deploy/prod`). They overlap like paths, by components: `resource:deploy` overlaps
 * `resource:deploy/prod`, `resource:deploy/prod` does not overlap `resource:deploy/production`; a
 * resource key never overlaps a path key. They grant no write scope: an item whose only locks are
 * resource keys is read-only.
 */

export const RESOURCE_PREFIX = 'resource:';

const COMPONENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const HOW_TO_WRITE =
  'write "resource:" followed by a name of "/"-separated components, each starting with a letter or digit and holding only letters, digits, ".", "_" and "-", like "resource:deploy/prod"';

/** True when `key` is written as a resource key (it starts with exactly `resource:`). */
export function isResourceKey(key: string): boolean {
  return key.startsWith(RESOURCE_PREFIX);
}

/**
 * True when `key` looks meant as a resource key but its prefix is spelled in another case
 * (`Resource:db`): as a path it would lock a directory nobody means, so it is refused.
 */
export function isMiscasedResourceKey(key: string): boolean {
  return !isResourceKey(key) && key.slice(0, RESOURCE_PREFIX.length).toLowerCase() === RESOURCE_PREFIX;
}

/** Why the resource key `key` is not usable, or undefined when it is. The message says how to write it. */
export function resourceKeyProblem(key: string): string | undefined {
  const shown = JSON.stringify(key);
  if (isMiscasedResourceKey(key)) return `lock key ${shown} starts with a resource prefix in the wrong case; ${HOW_TO_WRITE}`;
  const name = key.slice(RESOURCE_PREFIX.length);
  const trimmed = name.endsWith('/') ? name.slice(0, -1) : name;
  if (trimmed.length === 0) return `resource key ${shown} names no resource; ${HOW_TO_WRITE}`;
  for (const c of trimmed.split('/')) {
    if (c === '') return `resource key ${shown} has an empty component ("//"); ${HOW_TO_WRITE}`;
    if (!COMPONENT.test(c)) return `resource key ${shown} has the component ${JSON.stringify(c)}, which is not a name; ${HOW_TO_WRITE}`;
    if (c.includes('..')) return `resource key ${shown} has ".." in the component ${JSON.stringify(c)}; ${HOW_TO_WRITE}`;
  }
  return undefined;
}
