import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pidfilePath } from '../../src/executors/local-target.js';
import { PathOutsideDirectoryError, pathInside } from '../../src/path-inside.js';
import { liveLogPath, needsDir } from '../../src/runs/attempt.js';

/**
 * Run and item ids become file names (live logs, needs directories, pidfiles). Validation keeps them to
 * the id rule; these paths are also proven to stay in place where they are built, so a name that slipped
 * past (a plan read without validation, a future caller) still cannot leave its directory.
 */

const scratch = resolve('/srv/repo/.git/agora');

describe('pathInside', () => {
  it('joins names that stay inside, part by part', () => {
    expect(pathInside('/d', 'a', 'a name')).toBe(resolve('/d/a'));
    expect(pathInside('/d', ['run-1', 'item.2.log'], 'ids')).toBe(resolve('/d/run-1/item.2.log'));
    expect(pathInside('/d', 'vendor/mod', 'a submodule path')).toBe(resolve('/d/vendor/mod'));
  });

  it.each([
    ['..', ['..']],
    ['the directory itself', ['.']],
    ['an empty name', ['']],
    ['an absolute path', ['/etc/passwd']],
    ['a climb through a later part', ['run', '../../x']],
    ['a part that leaves the part before it', ['run', '../other-run/x']],
    ['NUL', ['a\0b']],
  ])('refuses %s with a typed error naming the input', (_what, parts) => {
    let caught: unknown;
    try {
      pathInside('/d', parts, 'test name');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(PathOutsideDirectoryError);
    expect(caught).toMatchObject({ code: 'path-outside-directory', message: expect.stringMatching(/^test name /) });
  });
});

describe('paths built from run and item ids', () => {
  it('are where the layout says for valid ids', () => {
    expect(liveLogPath(scratch, 'run-1', 'build', 2)).toBe(join(scratch, 'logs', 'run-1', 'build.2.log'));
    expect(needsDir(scratch, 'run-1', 'build', 2)).toBe(join(scratch, 'needs', 'run-1', 'build.2'));
    expect(pidfilePath(join(scratch, 'pids'), 'run-1', 'build', 2)).toBe(join(scratch, 'pids', 'run-1', 'build.2.pid'));
  });

  it.each([
    ['a run id of ..', '..', 'x'],
    ['a run id that climbs', '../../../hooks', 'x'],
    ['an item id that climbs', 'run-1', '../../../../hooks/post-merge'],
    ['an item id that leaves its run', 'run-1', '../run-2/x'],
    ['an absolute item id', 'run-1', '/tmp/x'],
  ])('refuse %s', (_what, runId, itemId) => {
    expect(() => liveLogPath(scratch, runId, itemId, 1)).toThrow(PathOutsideDirectoryError);
    expect(() => needsDir(scratch, runId, itemId, 1)).toThrow(PathOutsideDirectoryError);
    expect(() => pidfilePath(join(scratch, 'pids'), runId, itemId, 1)).toThrow(PathOutsideDirectoryError);
  });
});
