/**
 * The zod schema of `orch` in agora.config.mjs. Strict objects, so that a misspelt field is reported
 * instead of silently ignored; defaults are filled here. The output matches OrchConfig (types.ts)
 * except `configDir`, which the loader adds.
 */
import { z } from 'zod';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_NAME_MESSAGE = 'must be an environment variable name: letters, digits and _, not starting with a digit';

/** Names of environment variables. */
const EnvNameSchema = z.string().regex(ENV_NAME, ENV_NAME_MESSAGE);

/** A JSON Schema document: an object (ajv checks it when the config is loaded). */
export const JsonSchemaSchema = z.record(z.string(), z.unknown());

export const DockerOptionsSchema = z.strictObject({
  image: z.string().min(1),
  network: z.string().min(1).optional(),
  memory: z
    .string()
    .regex(/^\d+(\.\d+)?[bkmgBKMG]?$/, 'must be a size like "512m" or "1g" (a number with an optional b, k, m or g)')
    .optional(),
  cpus: z.number().positive().max(1024).optional(),
  pids: z.number().int().min(1).optional(),
  user: z.string().min(1).optional(),
});

export const SubagentConfigSchema = z
  .strictObject({
    command: z
      .array(z.string())
      .min(1, 'must name a program to run: a non-empty array like ["node", "edit.mjs"]')
      .refine((argv) => argv[0] !== '', { message: 'the program (the first element) must not be empty', path: [0] }),
    target: z.enum(['local', 'docker']).optional(),
    inputSchema: JsonSchemaSchema.optional(),
    secrets: z.array(EnvNameSchema).optional(),
    env: z.record(EnvNameSchema, z.string()).optional(),
    timeoutSeconds: z.number().positive().max(7 * 86_400).optional(),
    docker: DockerOptionsSchema.optional(),
  })
  .superRefine((subagent, ctx) => {
    if (subagent.target === 'docker' && subagent.docker === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['docker'],
        message: 'missing: target "docker" needs docker options with an image, like docker: { image: "node:20-slim" }',
      });
    }
  });

export const QueueConfigSchema = z.strictObject({
  concurrency: z.number().int().min(1).max(256),
});

/** A ref namespace: `refs/` then safe components, ending in `/` (added when missing). */
export const RefNamespaceSchema = z
  .string()
  .transform((ns) => (ns.endsWith('/') ? ns : `${ns}/`))
  .refine((ns) => /^refs\/([A-Za-z0-9][A-Za-z0-9_-]*\/)+$/.test(ns), {
    message: 'must look like "refs/agora/": "refs/" then one or more components of letters, digits, _ and -',
  });

export const OrchConfigSchema = z.strictObject({
  queues: z.record(z.string().min(1), QueueConfigSchema).default({}),
  defaultConcurrency: z.number().int().min(1).max(256).default(4),
  subagents: z.record(z.string().min(1), SubagentConfigSchema).default({}),
  shapes: z.record(z.string().min(1), JsonSchemaSchema).default({}),
  refNamespace: RefNamespaceSchema.default('refs/agora/'),
  commandTarget: z.enum(['local', 'docker']).default('local'),
  commandImage: z.string().min(1).optional(),
});

export type OrchConfigInput = z.input<typeof OrchConfigSchema>;
