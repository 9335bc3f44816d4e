import type { Identity } from './types.js';

/**
 * The author and committer of every commit Agora writes. The time comes from the caller (the core has no
 * clock), in milliseconds; git stores whole seconds, in UTC here.
 */
export function agoraIdentity(nowMs: number): Identity {
  return {
    name: 'Agora',
    email: 'agora@localhost',
    timestamp: Math.floor(nowMs / 1000),
    timezoneOffset: 0,
  };
}
