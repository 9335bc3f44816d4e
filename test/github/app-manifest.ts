/**
 * The permissions and events `app.yml` registers the App with. The App tests install the App with exactly
 * these, so a permission the App uses but the manifest does not ask for fails a test, not a user.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';

export interface AppManifest {
  permissions: Record<string, 'read' | 'write'>;
  events: string[];
}

export function appManifest(file = resolve('app.yml')): AppManifest {
  const doc = parse(readFileSync(file, 'utf8')) as { default_permissions?: Record<string, 'read' | 'write'>; default_events?: string[] };
  if (!doc.default_permissions || !doc.default_events) throw new Error(`${file} has no default_permissions or default_events`);
  return { permissions: doc.default_permissions, events: doc.default_events };
}
