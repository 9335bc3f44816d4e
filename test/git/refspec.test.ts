import { describe, expect, it } from 'vitest';
import { branchRef, mirrorPrefix, mirrorRef } from '../../src/git/refspec.js';

describe('refspecs', () => {
  it('mirrors one ref, or every ref under a prefix, forced, into the same name', () => {
    expect(mirrorRef('refs/agora/runs/r-1')).toBe('+refs/agora/runs/r-1:refs/agora/runs/r-1');
    expect(mirrorPrefix('refs/agora/')).toBe('+refs/agora/*:refs/agora/*');
    expect(mirrorRef(branchRef('agora/plan'))).toBe('+refs/heads/agora/plan:refs/heads/agora/plan');
  });

  it('refuses what would change the refspec: a colon, a glob, a space, a name outside refs/, a prefix without "/"', () => {
    for (const bad of ['refs/a:refs/b', 'refs/a/*', 'refs/a b', 'HEAD', 'refs/a\n']) {
      expect(() => mirrorRef(bad), bad).toThrow(expect.objectContaining({ code: 'ref-invalid' }));
    }
    expect(() => mirrorPrefix('refs/agora')).toThrow(/does not end in "\/"/);
  });
});
