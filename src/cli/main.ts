#!/usr/bin/env node
import { main } from './program.js';

// Exit explicitly: a verb is done when it returns, whatever handles (sockets, timers) an adapter left open.
process.exit(await main(process.argv));
