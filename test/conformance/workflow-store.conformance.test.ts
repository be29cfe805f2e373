import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ExecutionRow, StepWrite, Store } from '../../src/store/store.js';
import { storeKinds, type TestPlace } from '../support/stores.js';

const T0 = 1_700_000_000_000;

function row(id: string, seq: number, over: Partial<ExecutionRow> = {}): ExecutionRow {
  return {
    id,
    workflow: 'media.encode',
    version: 'v1',
    status: 'running',
    priority: T0,
    parentId: null,
    seq,
    doc: JSON.stringify({ id, note: 'plain' }),
    createdAt: T0,
    updatedAt: T0,
    finishedAt: null,
    owner: null,
    ownerUntil: null,
    ...over,
  };
}

const write = (r: ExecutionRow, extra: Partial<StepWrite> = {}): StepWrite => ({
  row: r,
  trace: null,
  enqueue: [],
  signals: [],
  ...extra,
});

/** The workflow store's contract, held by SQLite and PostgreSQL alike. */
describe.each(storeKinds)('workflow store conformance on $name', (kind) => {
  let place: TestPlace;
  let store: Store;

  beforeEach(async () => {
    place = kind.place();
    store = await place.open();
  });
  afterEach(async () => {
    await store.close();
    await place.cleanup();
  });

  it('inserts once, moves only from the sequence it read, and conflicts otherwise', async () => {
    expect(await store.workflow.commitSteps([write(row('a', 1))], T0)).toEqual([{ ok: true }]);
    expect(await store.workflow.commitSteps([write(row('a', 1))], T0)).toEqual([
      { ok: false, reason: 'conflict' },
    ]);
    expect(await store.workflow.commitSteps([write(row('a', 2))], T0)).toEqual([{ ok: true }]);
    expect(await store.workflow.commitSteps([write(row('a', 2))], T0)).toEqual([
      { ok: false, reason: 'conflict' },
    ]);
    expect((await store.workflow.getExecutions(['a']))[0]!.seq).toBe(2);
  });

  it('keeps the owner when a step runs none of the local invocations, and takes it when there is none', async () => {
    await store.workflow.commitSteps([write(row('a', 1, { owner: 'n1', ownerUntil: T0 + 500 }))], T0);
    await store.workflow.commitSteps(
      [write(row('a', 2, { owner: 'n2', ownerUntil: T0 + 900 }), { keepOwner: true })],
      T0,
    );
    expect((await store.workflow.getExecutions(['a']))[0]).toMatchObject({
      owner: 'n1',
      ownerUntil: T0 + 500,
    });
    await store.workflow.commitSteps([write(row('b', 1))], T0);
    await store.workflow.commitSteps(
      [write(row('b', 2, { owner: 'n2', ownerUntil: T0 }), { keepOwner: true })],
      T0,
    );
    expect((await store.workflow.getExecutions(['b']))[0]).toMatchObject({ owner: 'n2', ownerUntil: T0 });
  });

  it('finds lapsed ownership, a node’s own included; renewal moves it past now', async () => {
    await store.workflow.commitSteps(
      [
        write(row('mine', 1, { owner: 'me', ownerUntil: T0 - 10 })),
        write(row('theirs', 1, { owner: 'them', ownerUntil: T0 - 20 })),
        write(row('fresh', 1, { owner: 'them', ownerUntil: T0 + 1_000 })),
        write(row('done', 1, { owner: 'them', ownerUntil: T0 - 30, status: 'succeeded', finishedAt: T0 })),
      ],
      T0,
    );
    expect(await store.workflow.lapsedOwnership(T0, 10)).toEqual(['theirs', 'mine']);
    await store.workflow.renewOwnership(['mine', 'theirs'], 'me', T0 + 1_000);
    expect(await store.workflow.lapsedOwnership(T0, 10)).toEqual(['theirs']);
  });

  it('lists by service, status and parent, searches text literally, and pages by cursor', async () => {
    // The search text the engine gives at the start and the end of an execution (see searchText).
    const rows = [
      row('x1', 1, { createdAt: T0 + 1, doc: JSON.stringify({ input: { title: 'Big Buck Bunny' } }) }),
      row('x2', 1, { createdAt: T0 + 2, doc: JSON.stringify({ input: { title: '100% done_now' } }) }),
      row('x3', 1, { createdAt: T0 + 3, workflow: 'media2.encode' }),
      row('x4', 1, { createdAt: T0 + 4, parentId: 'x1', status: 'failed', finishedAt: T0 + 5 }),
    ];
    await store.workflow.commitSteps(
      rows.map((r) => write(r, { search: `${r.id} ${r.workflow} ${r.doc}` })),
      T0,
    );
    // A second line when x3 finishes: its output is searchable, and it is still listed once.
    await store.workflow.commitSteps(
      [
        write(
          { ...rows[2]!, seq: 2, status: 'succeeded', finishedAt: T0 + 9 },
          { search: 'x3 succeeded "Tears of Steel"' },
        ),
      ],
      T0,
    );
    const ids = async (f: Parameters<Store['workflow']['listExecutions']>[0]) =>
      (await store.workflow.listExecutions(f)).map((r) => r.id);
    expect(await ids({ limit: 10 })).toEqual(['x4', 'x3', 'x2', 'x1']);
    expect(await ids({ limit: 10, service: 'media' })).toEqual(['x4', 'x2', 'x1']);
    expect(await ids({ limit: 10, status: 'failed' })).toEqual(['x4']);
    expect(await ids({ limit: 10, parentId: 'x1' })).toEqual(['x4']);
    // Searches answer alike from the backlog commits append to, from the index, and from both at once.
    const searches = async (): Promise<void> => {
      expect(await ids({ limit: 10, q: 'buck bunny' })).toEqual(['x1']);
      expect(await ids({ limit: 10, q: '100%' })).toEqual(['x2']);
      expect(await ids({ limit: 10, q: 'e_n' })).toEqual(['x2']);
      expect(await ids({ limit: 10, q: '%' })).toEqual(['x2']);
      expect(await ids({ limit: 10, q: 'x3' })).toEqual(['x3']);
      expect(await ids({ limit: 10, q: 'tears of' })).toEqual(['x3']);
      expect(await ids({ limit: 10, q: 'x' })).toEqual(['x4', 'x3', 'x2', 'x1']);
      expect(await ids({ limit: 10, q: 'media2.enc' })).toEqual(['x3']);
    };
    await searches();
    expect(await store.workflow.indexSearch(3)).toBe(3);
    await searches();
    // Two nodes moving the rest at once move each row exactly once.
    const moved = await Promise.all([store.workflow.indexSearch(2), store.workflow.indexSearch(2)]);
    expect(moved[0] + moved[1]).toBe(2);
    expect(await store.workflow.indexSearch(10)).toBe(0);
    await searches();
    expect(await ids({ limit: 2, before: { createdAt: T0 + 3, id: 'x3' } })).toEqual(['x2', 'x1']);
    // Filters combine; a search by id still answers only within the other filters.
    expect(await ids({ limit: 10, service: 'media', status: 'failed', parentId: 'x1' })).toEqual(['x4']);
    expect(await ids({ limit: 10, service: 'media', before: { createdAt: T0 + 4, id: 'x4' } })).toEqual([
      'x2',
      'x1',
    ]);
    expect(await ids({ limit: 10, q: 'x4', status: 'failed' })).toEqual(['x4']);
    expect(await ids({ limit: 10, q: 'x4', status: 'running' })).toEqual([]);
    expect(await ids({ limit: 10, q: 'x1', service: 'media2' })).toEqual([]);
    expect(await ids({ limit: 10, q: 'x1', before: { createdAt: T0 + 1, id: 'x1' } })).toEqual([]);
  });
});

/** Services as data: saved on deploy, listed with their calls, walked backwards for callers. */
describe.each(storeKinds)('service store conformance on $name', (kind) => {
  let place: TestPlace;
  let store: Store;

  beforeEach(async () => {
    place = kind.place();
    store = await place.open();
  });
  afterEach(async () => {
    await store.close();
    await place.cleanup();
  });

  const svc = (name: string, calls: string[], team = `${name}-team`) => ({
    name,
    owner: { team },
    calls,
    secrets: [],
    definition: { operations: {} },
    deployedAt: T0,
  });

  it('saves, replaces and lists services with their calls', async () => {
    await store.services.save([
      svc('catalog', ['encoder', 'quality']),
      svc('encoder', []),
      svc('quality', []),
    ]);
    await store.services.save([
      { ...svc('quality', ['encoder'], 'video-quality'), owner: { team: 'video-quality', contact: 'vq@x' } },
    ]);
    const all = await store.services.list();
    expect(all.map((s) => [s.name, s.owner, s.calls])).toEqual([
      ['catalog', { team: 'catalog-team' }, ['encoder', 'quality']],
      ['encoder', { team: 'encoder-team' }, []],
      ['quality', { team: 'video-quality', contact: 'vq@x' }, ['encoder']],
    ]);
  });

  it('finds every caller, directly or through others, nearest first', async () => {
    await store.services.save([
      svc('ui', ['catalog']),
      svc('catalog', ['encoder', 'quality']),
      svc('quality', ['encoder']),
      svc('encoder', []),
    ]);
    expect(await store.services.callersOf('encoder')).toEqual([
      { name: 'catalog', depth: 1 },
      { name: 'quality', depth: 1 },
      { name: 'ui', depth: 2 },
    ]);
    expect(await store.services.callersOf('ui')).toEqual([]);
  });
});
