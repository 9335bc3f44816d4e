#!/usr/bin/env node
import { main } from './program.js';

const code = await main(process.argv);
// Let piped output drain (a full pipe queues writes), then exit explicitly: a verb is done when it
// returns, whatever handles (sockets, timers) an adapter left open.
await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))));
process.exit(code);
