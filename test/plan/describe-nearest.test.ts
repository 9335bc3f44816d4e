import { describe, expect, it } from 'vitest';
import { nearestNames } from '../../src/problems/describe.js';

describe('nearestNames', () => {
  it('orders candidates by edit distance, keeps ties in their order, and stops at the limit', () => {
    const runs = ['fanout-1-1', 'fanout-1-2', 'pipeline-1', 'fanout-1-10', 'map-reduce-3'];
    expect(nearestNames('fanout-1-3', runs, 3)).toEqual(['fanout-1-1', 'fanout-1-2', 'fanout-1-10']);
    expect(nearestNames('pipelin-1', runs, 1)).toEqual(['pipeline-1']);
    expect(nearestNames('x', [], 5)).toEqual([]);
  });
});
