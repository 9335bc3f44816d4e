// Agora configuration for the pipeline example: command items, one at a time.
export const orch = {
  queues: { default: { concurrency: 1 } },
};
