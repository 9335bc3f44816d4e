// Agora configuration: three `tidy` workers at once (each holds a lock on its own file), then `index`.
import { fileURLToPath } from 'node:url';

const agent = (name) => [process.execPath, fileURLToPath(new URL(`./agents/${name}.mjs`, import.meta.url))];

export const orch = {
  queues: { default: { concurrency: 3 } },
  subagents: {
    tidy: {
      command: agent('tidy'),
      inputSchema: {
        type: 'object',
        properties: { file: { type: 'string', pattern: '^notes/[a-z]+\\.txt$' } },
        required: ['file'],
        additionalProperties: false,
      },
    },
    index: { command: agent('index') },
  },
};
