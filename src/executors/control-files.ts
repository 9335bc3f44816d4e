/**
 * The names and bounds of an attempt's control files that every target which carries them agrees on:
 * `$AGORA_EMIT/items.json`, the fragment an item emits (read by src/runs/emit.ts).
 */

/** The control file an item writes to emit items. */
export const EMIT_FILE = 'items.json';
/** The most bytes items.json may hold. */
export const MAX_EMIT_BYTES = 1024 * 1024;
