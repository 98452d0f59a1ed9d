/**
 * The PartiQL write statements the adapters send in BatchExecuteStatement (rule states:
 * functions/adapters/dynamo-rules.ts), read back into the item operations they mean, for the two
 * places that answer DynamoDB without the service: the deploy harness (which applies them to dynalite,
 * which has no PartiQL) and the benchmarks' in-process stub. Only these forms are read:
 *
 *   INSERT INTO "table" VALUE {'a': ?, 'b': ?, ...}
 *   UPDATE "table" SET "a" = ? [SET "b" = ?]... [REMOVE "c"]... WHERE "k1" = ? AND "k2" = ? [AND "c" = ?]...
 *
 * (parameters only, no literals; identifiers double-quoted). Anything else is an error naming the
 * statement: an adapter that starts sending another form must extend this reader, not pass untested.
 */
type Wire = Record<string, unknown>;

export type PartiqlWrite =
  | { kind: 'insert'; table: string; item: Record<string, Wire> }
  | {
      kind: 'update';
      table: string;
      /** The WHERE equalities: the key attributes and any condition on other attributes. */
      where: Record<string, Wire>;
      set: Record<string, Wire>;
      remove: string[];
    };

const INSERT = /^INSERT INTO "([^"]+)" VALUE \{(.*)\}$/s;
const UPDATE = /^UPDATE "([^"]+)" (.+?) WHERE (.+)$/s;

export function readPartiqlWrite(statement: string, parameters: readonly Wire[] = []): PartiqlWrite {
  let next = 0;
  const param = (): Wire => {
    const p = parameters[next++];
    if (p === undefined) throw new Error(`PartiQL: fewer parameters than "?" in: ${statement}`);
    return p;
  };
  const fail = (): never => {
    throw new Error(`PartiQL: not a statement form this reader knows: ${statement}`);
  };
  const insert = INSERT.exec(statement.trim());
  if (insert) {
    const item: Record<string, Wire> = {};
    for (const field of insert[2]!.split(',')) {
      const m = /^\s*'([^']+)'\s*:\s*\?\s*$/.exec(field) ?? fail();
      item[m![1]!] = param();
    }
    return done({ kind: 'insert', table: insert[1]!, item });
  }
  const update = UPDATE.exec(statement.trim());
  if (update) {
    const set: Record<string, Wire> = {};
    const remove: string[] = [];
    for (const clause of update[2]!.split(/\s+(?=SET |REMOVE )/)) {
      const s = /^SET "([^"]+)" = \?$/.exec(clause.trim());
      const r = /^REMOVE "([^"]+)"$/.exec(clause.trim());
      if (s) set[s[1]!] = param();
      else if (r) remove.push(r[1]!);
      else fail();
    }
    const where: Record<string, Wire> = {};
    for (const term of update[3]!.split(/\s+AND\s+/)) {
      const m = /^"([^"]+)" = \?$/.exec(term.trim()) ?? fail();
      where[m![1]!] = param();
    }
    return done({ kind: 'update', table: update[1]!, where, set, remove });
  }
  return fail();

  function done(w: PartiqlWrite): PartiqlWrite {
    if (next !== parameters.length) throw new Error(`PartiQL: more parameters than "?" in: ${statement}`);
    return w;
  }
}
