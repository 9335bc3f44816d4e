/**
 * Before each test file: a brief look at how busy the machine is now (a fifth of the start-up probe), so a
 * machine that got busy after the suite started still gets bounds to match. The file's default timeouts
 * follow; `scaled()` and `eventually()` read the same factor.
 */
import { vi } from 'vitest';
import { machineFactor, setFileMachineFactor } from './eventually.js';
import { measureMachineFactor } from './machine.js';

setFileMachineFactor(await measureMachineFactor(process.env, 0.2));
const factor = machineFactor();
vi.setConfig({ testTimeout: Math.ceil(60_000 * factor), hookTimeout: Math.ceil(60_000 * factor) });
