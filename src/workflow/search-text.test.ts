import { describe, expect, it } from 'vitest';
import type { Execution } from './execution.js';
import { searchText } from './search-text.js';

const base: Execution = {
  id: 'x-1',
  workflow: 'catalog.ingest',
  version: 'v1',
  status: 'running',
  input: { title: 'Sintel' },
  state: { big: 'state is not searched' },
  priority: 0,
  seq: 1,
  nextPid: 1,
  outstanding: {},
  createdAt: 0,
  updatedAt: 0,
};

describe('searchText', () => {
  it('gives id, workflow and input at the start, nothing on later steps, what came out at the end', () => {
    expect(searchText(base, true)).toBe('x-1 catalog.ingest {"title":"Sintel"}');
    expect(searchText(base, false)).toBeUndefined();
    expect(searchText({ ...base, status: 'succeeded', output: { entry: 'e1' } }, false)).toBe(
      'x-1 succeeded {"entry":"e1"}',
    );
    expect(
      searchText(
        { ...base, status: 'failed', error: { code: 'function_failed', message: 'bad chunk' } },
        false,
      ),
    ).toBe('x-1 failed function_failed bad chunk');
  });

  it('caps the text', () => {
    const long = searchText({ ...base, input: { blob: 'y'.repeat(10_000) } }, true)!;
    expect(long.length).toBe(4_000);
  });
});
