#!/usr/bin/env node
import { main } from './program.js';

// Whoever read our output may go away (a closed terminal, a log collector that died): a write then fails
// with EPIPE. That must not kill `agora orch serve` and leave its workers orphaned; the work goes on and
// the rest of the output is dropped. Other stream errors are still fatal.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
}

const code = await main(process.argv);
// Let piped output drain (a full pipe queues writes), then exit explicitly: a verb is done when it
// returns, whatever handles (sockets, timers) an adapter left open.
await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))));
process.exit(code);
