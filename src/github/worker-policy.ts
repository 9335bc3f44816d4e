import { readFile } from 'node:fs/promises';
import type { OrchConfig } from '../config/types.js';
import { agentKeyNames, MIN_SECRET_LENGTH } from '../config/secrets.js';
import { InvalidInputError, type Problem, errorMessage } from '../errors.js';
import { targetNameOf } from '../executors/build-job.js';
import type { Plan } from '../plan/schema.js';

/**
 * What the app lets a repository's plans run, and with which secrets: decided by the operator, never by
 * the repository (a plan is code, and the app's host holds the private key of every installation).
 *
 * - Targets: docker when the app's config names it; `local` (a process on the app's own host, able to
 *   read whatever the app's user can, its private key included) only for repositories the operator
 *   trusts, named by repository id (a name can be transferred to someone else; an id stays).
 * - Secrets: a worker starts from an empty environment plus the secrets its item declares, and those come
 *   only from what the operator configured for that repository, never from the app's own environment;
 *   on the `actions` target, from the repository's own Actions secrets, which the app never sees.
 */
export interface WorkerPolicy {
  /** Repository ids whose plans may run on the `local` target. */
  trustedRepositoryIds: ReadonlySet<number>;
  /** Secrets by repository id: what the items of that repository may declare. */
  secretsByRepository: ReadonlyMap<number, Readonly<Record<string, string>>>;
  /**
   * Who runs this service, for the fixes a refusal gives: the App's operator (default), or the Agora
   * Action's `mode: run`, which has no operator and never offers `local` or secrets.
   */
  hostedBy?: 'app' | 'action-run';
}

export const NO_TRUST: WorkerPolicy = { trustedRepositoryIds: new Set(), secretsByRepository: new Map() };

/** `mode: run` of the Agora Action: items run on the runner's container engine, with no secrets. */
export const ACTION_RUN_POLICY: WorkerPolicy = { ...NO_TRUST, hostedBy: 'action-run' };

/** Whether the app offers the `local` target to the repository `repositoryId`. */
export function offersLocal(policy: WorkerPolicy, repositoryId: number | undefined): boolean {
  return repositoryId !== undefined && policy.trustedRepositoryIds.has(repositoryId);
}

/** The secrets the operator configured for `repositoryId` (none when unknown). */
export function secretsFor(policy: WorkerPolicy, repositoryId: number | undefined): Record<string, string> {
  return { ...(repositoryId === undefined ? {} : policy.secretsByRepository.get(repositoryId)) };
}

/**
 * Every item of `plan` that asks for what the app does not allow this repository: a target it does not
 * offer, or a secret the operator did not configure for it. Reported at intake, so nothing runs.
 */
export function policyProblems(
  plan: Plan,
  config: OrchConfig,
  offered: ReadonlySet<string>,
  secrets: Readonly<Record<string, string>>,
  hostedBy: WorkerPolicy['hostedBy'] = 'app',
): Problem[] {
  const problems: Problem[] = [];
  const inAction = hostedBy === 'action-run';
  const offers = [...offered].sort().join(', ') || 'none';
  const agentKeys = agentKeyNames(config);
  plan.items.forEach((item, i) => {
    const target = targetNameOf(item, config);
    if (target !== undefined && !offered.has(target)) {
      const where = item.executor === 'command' && item.inputs.target !== undefined ? `$.items[${i}].inputs.target` : `$.items[${i}]`;
      problems.push({
        path: where,
        message: inAction
          ? `runs on target "${target}", which \`mode: run\` of the Agora Action does not offer (its items run in containers on the runner: ${offers}); use that target, or drive the plan with the Agora App`
          : target === 'local'
            ? `runs on target "local" (a process on the app's own host), which this app offers only to repositories its operator trusts; it offers this one: ${offers}. Use a target it offers, or ask the operator to add this repository's id to AGORA_TRUSTED_REPOSITORY_IDS`
            : `runs on target "${target}", which this app does not offer (it offers: ${offers}); use one of those, or ask the operator to configure "${target}" in the app's config`,
      });
    }
    const declared =
      item.executor === 'command' ? item.inputs.secrets : item.executor === 'dispatch' ? config.subagents[String(item.inputs.subagent)]?.secrets : undefined;
    // On the actions target the values are the repository's own Actions secrets, read by the worker job
    // on its runner: the operator configures none of them, and the app never holds them.
    if (!Array.isArray(declared) || target === 'actions') return;
    declared.forEach((name, j) => {
      if (item.executor === 'command' && typeof name === 'string' && agentKeys.has(name)) {
        problems.push({
          path: `$.items[${i}].inputs.secrets[${j}]`,
          message: `declares secret ${JSON.stringify(name)}, the API key of an agent, which only the orchestrator's loop holds; remove it (an agent item gets the key through its loop)`,
        });
        return;
      }
      if (typeof name === 'string' && Object.hasOwn(secrets, name)) return;
      problems.push({
        path: item.executor === 'command' ? `$.items[${i}].inputs.secrets[${j}]` : `$.items[${i}].inputs.subagent`,
        message: inAction
          ? `needs secret ${JSON.stringify(name)}, but \`mode: run\` of the Agora Action hands its items no secrets (the job's own would reach code the pull request wrote); drop it, or drive the plan with the Agora App, which can be given secrets per repository`
          : `needs secret ${JSON.stringify(name)}, which the app's operator has not configured for this repository (secrets come from AGORA_SECRETS_FILE, never from the app's environment); ask the operator to add it, or drop it`,
      });
    });
  });
  return problems;
}

/**
 * The policy from the app's environment: AGORA_TRUSTED_REPOSITORY_IDS (comma-separated repository ids
 * whose plans may run on `local`) and AGORA_SECRETS_FILE (a JSON file `{ "<repository id>": { "NAME":
 * "value" } }`, read once at start; keep it readable by the app's user only).
 */
export async function policyFromEnv(env: NodeJS.ProcessEnv): Promise<WorkerPolicy> {
  const trusted = new Set<number>();
  for (const part of (env.AGORA_TRUSTED_REPOSITORY_IDS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (!/^[1-9][0-9]*$/.test(part)) {
      throw new InvalidInputError(
        'invalid-environment',
        'AGORA_TRUSTED_REPOSITORY_IDS',
        [{ path: 'AGORA_TRUSTED_REPOSITORY_IDS', message: `"${part}" is not a repository id` }],
        'list numeric repository ids (GET /repos/{owner}/{repo} → id), comma-separated: names can be transferred, ids cannot',
      );
    }
    trusted.add(Number(part));
  }
  const secrets = new Map<number, Record<string, string>>();
  const file = env.AGORA_SECRETS_FILE;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw new InvalidInputError(
        'invalid-environment',
        'AGORA_SECRETS_FILE',
        [{ path: file, message: `cannot be read as JSON: ${errorMessage(e)}` }],
        'point AGORA_SECRETS_FILE at a JSON file { "<repository id>": { "NAME": "value" } }',
      );
    }
    const problems: Problem[] = [];
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      problems.push({ path: '$', message: 'must be an object keyed by repository id' });
    else {
      for (const [id, values] of Object.entries(parsed)) {
        if (!/^[1-9][0-9]*$/.test(id)) problems.push({ path: `$.${id}`, message: 'is not a repository id' });
        else if (typeof values !== 'object' || values === null || Array.isArray(values) || !Object.values(values).every((v) => typeof v === 'string')) {
          problems.push({ path: `$.${id}`, message: 'must be an object of secret names to string values' });
        } else {
          for (const [name, value] of Object.entries(values as Record<string, string>)) {
            if (value.replace(/[\r\n]/g, '').length < MIN_SECRET_LENGTH)
              problems.push({ path: `$.${id}.${name}`, message: `is shorter than ${MIN_SECRET_LENGTH} characters, too short to redact from logs reliably` });
          }
          secrets.set(Number(id), values as Record<string, string>);
        }
      }
    }
    if (problems.length) throw new InvalidInputError('invalid-environment', file, problems, 'write it as { "<repository id>": { "NAME": "value" } }');
  }
  return { trustedRepositoryIds: trusted, secretsByRepository: secrets };
}
