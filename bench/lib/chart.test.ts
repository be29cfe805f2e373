import { describe, expect, it } from 'vitest';
import { barChart } from './chart.js';

describe('barChart', () => {
  it('scales bars to the largest value and prints each value', () => {
    const lines = barChart(
      [
        { label: 'a', value: 100 },
        { label: 'bbb', value: 50 },
        { label: 'c', value: 0 },
      ],
      'jobs/s',
      10,
    );
    expect(lines[0]).toBe(`a    ${'█'.repeat(10).padEnd(11)} 100 jobs/s`);
    expect(lines[1]).toBe(`bbb  ${'█'.repeat(5).padEnd(11)} 50 jobs/s`);
    expect(lines[2]).toBe(`c    ${''.padEnd(11)} 0 jobs/s`);
  });

  it('draws fractions of a cell with partial blocks', () => {
    const [, half] = barChart(
      [
        { label: 'x', value: 8 },
        { label: 'y', value: 1 },
      ],
      'u',
      4,
    );
    expect(half).toContain('▌');
  });
});
