/** The node record's copy and field classification: both run per message on the hot path. */
import { describe, expect, it } from 'vitest';
import {
  copyNodeRecord,
  NODE_FIELDS,
  type NodeRecord,
  nodeStructureChanged,
} from '../../../functions/core/sparkplug/host/state.js';

const full = (): NodeRecord => ({
  group: 'g',
  node: 'n',
  version: 3,
  online: true,
  bdSeq: '7',
  birthTime: 1,
  lastSeen: 2,
  expectedSeq: 4,
  recentSeqs: [1, 2, 3],
  gap: { missing: [5], deadline: 9 },
  aliases: { '1': { name: 'a', datatype: 3 } },
  metrics: { a: { name: 'a', datatype: 3 } },
  templates: {},
  devices: ['d'],
  lastRebirthRequest: 8,
});

describe('copyNodeRecord', () => {
  it('copies every classified field, and the test record sets every one of them', () => {
    const r = full();
    expect(Object.keys(r).sort()).toEqual(Object.keys(NODE_FIELDS).sort());
    const c = copyNodeRecord(r);
    expect(c).toStrictEqual(r);
    expect(c).not.toBe(r);
  });

  it('leaves absent optional fields absent (not present-and-undefined)', () => {
    const { bdSeq: _b, expectedSeq: _e, gap: _g, lastRebirthRequest: _l, ...bare } = full();
    const c = copyNodeRecord(bare);
    expect(Object.keys(c).sort()).toEqual(Object.keys(bare).sort());
    expect(c).toStrictEqual(bare);
  });

  it('is shallow: changing the copy leaves the original alone', () => {
    const r = full();
    const c = copyNodeRecord(r);
    c.lastSeen = 99;
    c.recentSeqs = [];
    expect(r.lastSeen).toBe(2);
    expect(r.recentSeqs).toEqual([1, 2, 3]);
    expect(c.aliases).toBe(r.aliases);
  });
});

describe('nodeStructureChanged', () => {
  it('sees a change of every structural field and of no volatile one', () => {
    for (const [field, kind] of Object.entries(NODE_FIELDS)) {
      const a = full();
      const b = copyNodeRecord(a);
      (b as unknown as Record<string, unknown>)[field] = { changed: field };
      expect([field, nodeStructureChanged(a, b)]).toEqual([field, kind === 'structural']);
    }
  });

  it('is false for an unchanged copy', () => {
    const a = full();
    expect(nodeStructureChanged(a, copyNodeRecord(a))).toBe(false);
  });
});
