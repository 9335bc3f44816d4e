// Agora configuration: one agent item, whose managed loop may call a second agent.
// The loop runs in the orchestrator with ANTHROPIC_API_KEY; set ANTHROPIC_BASE_URL to use another endpoint.
export const orch = {
  queues: { default: { concurrency: 1 } },
  subagents: {
    editor: {
      agent: { prompt: 'prompts/editor.md', model: 'claude-sonnet-4-5', maxTurns: 10 },
      dependencies: ['proofreader'],
      maxHops: 1,
      callBudget: { modelCalls: 5 },
      outputSchema: { type: 'object', required: ['summary'], properties: { summary: { type: 'string' } } },
    },
    proofreader: {
      description: 'Reads one file of the workspace and lists its spelling and grammar mistakes.',
      agent: { prompt: 'prompts/proofreader.md', model: 'claude-sonnet-4-5', maxTurns: 4, tools: ['read_file'] },
      inputSchema: { type: 'object', required: ['path'], properties: { path: { type: 'string' } }, additionalProperties: false },
    },
  },
};
