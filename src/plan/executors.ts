/** The executors every plan may name without configuring them: `command` (a shell command) and `dispatch`. */
export const BUILTIN_EXECUTORS = ['command', 'dispatch'] as const;
