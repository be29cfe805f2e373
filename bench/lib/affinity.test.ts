import { describe, expect, it } from 'vitest';
import { parseCpuList } from './affinity.js';

describe('parseCpuList', () => {
  it('reads single CPUs and ranges', () => {
    expect(parseCpuList('0-1')).toEqual([0, 1]);
    expect(parseCpuList('0-3,6,8-9')).toEqual([0, 1, 2, 3, 6, 8, 9]);
    expect(parseCpuList('5')).toEqual([5]);
  });

  it('gives nothing for text that is not a CPU list', () => {
    expect(parseCpuList('')).toEqual([]);
    expect(parseCpuList('ff')).toEqual([]);
    expect(parseCpuList('3-1')).toEqual([]);
  });
});
