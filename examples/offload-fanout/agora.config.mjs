// Agora configuration for the offload-fanout example: two local subagents, two items at a time.
import { fileURLToPath } from 'node:url';

const agent = (name) => [process.execPath, fileURLToPath(new URL(`./agents/${name}.mjs`, import.meta.url))];

export const orch = {
  queues: { default: { concurrency: 2 } },
  subagents: {
    'code-edit': {
      command: agent('code-edit'),
      inputSchema: {
        type: 'object',
        properties: { file: { type: 'string', pattern: '^[A-Za-z0-9._-]+\\.ts$' } },
        required: ['file'],
        additionalProperties: false,
      },
    },
    verify: { command: agent('verify') },
  },
};
