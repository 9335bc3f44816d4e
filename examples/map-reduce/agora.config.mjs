// Agora configuration for the map-reduce example: four mappers at once, then one reducer.
import { fileURLToPath } from 'node:url';

const agent = (name) => [process.execPath, fileURLToPath(new URL(`./agents/${name}.mjs`, import.meta.url))];

export const orch = {
  queues: { default: { concurrency: 4 } },
  subagents: {
    'count-words': {
      command: agent('count-words'),
      inputSchema: {
        type: 'object',
        properties: { shard: { type: 'integer', minimum: 1 } },
        required: ['shard'],
        additionalProperties: false,
      },
    },
    'merge-counts': { command: agent('merge-counts') },
  },
};
