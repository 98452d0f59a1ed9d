/** The reader of the PartiQL write statements the adapters send (the harness and the bench stub apply them). */
import { describe, expect, it } from 'vitest';
import { readPartiqlWrite } from '../../scripts/verify-deploy/partiql-writes.js';

const S = (s: string) => ({ S: s });
const N = (n: number) => ({ N: String(n) });

describe('readPartiqlWrite', () => {
  it('reads an INSERT into the item it puts', () => {
    expect(
      readPartiqlWrite(`INSERT INTO "state" VALUE {'pk': ?, 'sk': ?, 'version': ?}`, [
        S('RS#r#1'),
        S('d|m'),
        N(1),
      ]),
    ).toEqual({ kind: 'insert', table: 'state', item: { pk: S('RS#r#1'), sk: S('d|m'), version: N(1) } });
  });

  it('reads an UPDATE into its SET values, REMOVEd names and WHERE equalities, parameters in order', () => {
    expect(
      readPartiqlWrite(
        'UPDATE "state" SET "version" = ? SET "data" = ? REMOVE "dueAt" WHERE "pk" = ? AND "sk" = ? AND "version" = ?',
        [N(3), { M: {} }, S('RS#r#1'), S('d|m'), N(2)],
      ),
    ).toEqual({
      kind: 'update',
      table: 'state',
      set: { version: N(3), data: { M: {} } },
      remove: ['dueAt'],
      where: { pk: S('RS#r#1'), sk: S('d|m'), version: N(2) },
    });
  });

  it('names the statement it cannot read: another form, a literal, too few or too many parameters', () => {
    expect(() => readPartiqlWrite('DELETE FROM "state" WHERE "pk" = ?', [S('x')])).toThrow(
      /not a statement form this reader knows: DELETE FROM/,
    );
    expect(() => readPartiqlWrite(`INSERT INTO "state" VALUE {'pk': 'literal'}`, [])).toThrow(
      /not a statement form/,
    );
    expect(() =>
      readPartiqlWrite('UPDATE "state" SET "a" = ? WHERE "pk" = ? AND "sk" = ?', [N(1), S('p')]),
    ).toThrow(/fewer parameters/);
    expect(() => readPartiqlWrite(`INSERT INTO "state" VALUE {'pk': ?}`, [S('p'), S('extra')])).toThrow(
      /more parameters/,
    );
  });
});
