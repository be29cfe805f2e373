import { describe, expect, it } from 'vitest';
import { Heap } from './heap.js';

interface Box {
  v: number;
  heapIndex?: number;
}
const byValue = (a: Box, b: Box): boolean => a.v < b.v;

function drain(h: Heap<Box>): number[] {
  const out: number[] = [];
  for (let x = h.pop(); x !== undefined; x = h.pop()) out.push(x.v);
  return out;
}

describe('Heap', () => {
  it('pops in order', () => {
    const h = new Heap<Box>(byValue);
    for (const v of [5, 3, 8, 1, 9, 2, 7]) h.push({ v });
    expect(h.size).toBe(7);
    expect(h.peek()?.v).toBe(1);
    expect(drain(h)).toEqual([1, 2, 3, 5, 7, 8, 9]);
    expect(h.pop()).toBeUndefined();
  });

  it('removes from the middle and re-sifts an element whose key changed', () => {
    const h = new Heap<Box>(byValue);
    const boxes = [4, 1, 6, 3, 9].map((v) => ({ v }));
    for (const b of boxes) h.push(b);
    expect(h.remove(boxes[2] as Box)).toBe(true);
    expect(h.remove(boxes[2] as Box)).toBe(false);
    expect(h.has(boxes[2] as Box)).toBe(false);
    (boxes[4] as Box).v = 0;
    h.update(boxes[4] as Box);
    (boxes[1] as Box).v = 10;
    h.update(boxes[1] as Box);
    expect(drain(h)).toEqual([0, 3, 4, 10]);
  });

  it('rejects a duplicate push and an update of an absent element', () => {
    const h = new Heap<Box>(byValue);
    const b = { v: 1 };
    h.push(b);
    expect(() => h.push(b)).toThrow(/already/);
    expect(() => h.update({ v: 2 })).toThrow(/not in the heap/);
    expect(() => new Heap<Box>(byValue).push(b)).toThrow(/another heap/);
    expect(new Heap<Box>(byValue).has(b)).toBe(false);
    h.remove(b);
    const other = new Heap<Box>(byValue);
    other.push(b);
    expect(other.has(b) && !h.has(b)).toBe(true);
  });

  it('agrees with a sorted array over random push / pop / remove / update', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const h = new Heap<Box>(byValue);
    const live: Box[] = [];
    for (let step = 0; step < 5_000; step++) {
      const op = rand(4);
      if (op === 0 || live.length === 0) {
        const b = { v: rand(100) };
        live.push(b);
        h.push(b);
      } else if (op === 1) {
        const min = Math.min(...live.map((b) => b.v));
        const popped = h.pop() as Box;
        expect(popped.v).toBe(min);
        live.splice(live.indexOf(popped), 1);
      } else if (op === 2) {
        const b = live.splice(rand(live.length), 1)[0] as Box;
        expect(h.remove(b)).toBe(true);
      } else {
        const b = live[rand(live.length)] as Box;
        b.v = rand(100);
        h.update(b);
      }
      expect(h.size).toBe(live.length);
    }
    expect(drain(h)).toEqual(live.map((b) => b.v).sort((a, b) => a - b));
  });
});
