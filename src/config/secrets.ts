/**
 * What a secret value must be for Agora to pass it to a worker: at least MIN_SECRET_LENGTH characters
 * (line breaks not counted). A shorter value cannot be redacted from logs without also destroying
 * ordinary text (every `a1b2` would go), and its encodings would be shorter still.
 */
import { AgoraError } from '../errors.js';
import type { OrchConfig } from './types.js';

/** The shortest secret value accepted (docs/security.md). */
export const MIN_SECRET_LENGTH = 8;

export class SecretTooShortError extends AgoraError {
  override readonly name = 'SecretTooShortError';
  constructor(
    /** The environment variable that holds the value. */
    readonly secretName: string,
    /** Where it was asked for: `subagent reviewer`, `item deploy`. */
    readonly neededBy: string,
  ) {
    super(
      'secret-too-short',
      `secret ${secretName} (needed by ${neededBy}) is shorter than ${MIN_SECRET_LENGTH} characters, too short to redact from logs reliably`,
      `give ${secretName} a value of at least ${MIN_SECRET_LENGTH} characters (a real token or key is longer), or stop declaring it as a secret`,
    );
  }
}

/** Throws SecretTooShortError unless `value` is long enough to be a secret. */
export function checkSecretValue(secretName: string, value: string, neededBy: string): void {
  if (value.replace(/[\r\n]/g, '').length < MIN_SECRET_LENGTH) throw new SecretTooShortError(secretName, neededBy);
}

/**
 * Checks, when a server starts, every secret the config's subagents declare and `environment` sets, so
 * that a too short one is refused before anything runs. (A `command` item's own secrets are checked when
 * its job is built.)
 */
export function checkConfiguredSecrets(config: Pick<OrchConfig, 'subagents' | 'secrets'>, environment: Record<string, string | undefined>): void {
  const check = (secret: string, neededBy: string) => {
    const value = Object.hasOwn(environment, secret) ? environment[secret] : undefined;
    if (value !== undefined) checkSecretValue(secret, value, neededBy);
  };
  for (const [name, subagent] of Object.entries(config.subagents)) for (const secret of subagent.secrets ?? []) check(secret, `subagent ${name}`);
  for (const secret of config.secrets ?? []) check(secret, 'the config (orch.secrets)');
}

/** The names under which the config's agents read their API keys (held by the orchestrator's loop alone). */
export function agentKeyNames(config: Pick<OrchConfig, 'subagents'>): Set<string> {
  const names = new Set<string>();
  for (const subagent of Object.values(config.subagents)) if (subagent.agent) names.add(subagent.agent.apiKeyEnv);
  return names;
}

/** Read by an agent's loop from the environment, beside its key: where the model's API is. */
const AGENT_ENDPOINT_VARIABLES = ['ANTHROPIC_BASE_URL'];

/**
 * What of Agora's own environment (`agora orch run`, `serve`) a run may read: the secrets the config
 * offers to plans (`orch.secrets`), those its subagents declare, and what the agents' loops read (their
 * API keys, ANTHROPIC_BASE_URL). A plan's `command` item declaring any other name finds it unset: a plan
 * is code, and the variables of the shell that started Agora are not the plan's to ask for.
 */
export function offeredEnvironment(config: Pick<OrchConfig, 'subagents' | 'secrets'>, environment: Record<string, string | undefined>): Record<string, string> {
  const names = new Set([...(config.secrets ?? []), ...agentKeyNames(config), ...AGENT_ENDPOINT_VARIABLES]);
  for (const subagent of Object.values(config.subagents)) for (const secret of subagent.secrets ?? []) names.add(secret);
  const offered: Record<string, string> = {};
  for (const name of names) {
    const value = Object.hasOwn(environment, name) ? environment[name] : undefined;
    if (value !== undefined) offered[name] = value;
  }
  return offered;
}
