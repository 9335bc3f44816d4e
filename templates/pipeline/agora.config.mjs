// Agora configuration: a pipeline of command items, one step at a time.
export const orch = {
  queues: { default: { concurrency: 1 } },
};
