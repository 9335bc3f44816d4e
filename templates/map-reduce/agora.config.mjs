// Agora configuration: the mappers run side by side (each locks its own partial), then the reducer.
import { fileURLToPath } from 'node:url';

const agent = (name) => [process.execPath, fileURLToPath(new URL(`./agents/${name}.mjs`, import.meta.url))];

export const orch = {
  queues: { default: { concurrency: 3 } },
  subagents: {
    mapper: {
      command: agent('mapper'),
      inputSchema: {
        type: 'object',
        properties: { shard: { type: 'integer', minimum: 1 } },
        required: ['shard'],
        additionalProperties: false,
      },
    },
    reducer: { command: agent('reducer') },
  },
};
