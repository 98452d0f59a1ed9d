/**
 * The local IoT rule engine: parses and evaluates the SAME rule SQL (infra/pipeline.ts) that the CDK
 * stack deploys, for the subset of IoT SQL 2016-03-23 the pipeline uses:
 *
 *   SELECT *  |  SELECT expr AS alias [, expr AS alias ...]
 *   FROM 'topic/filter/with/+/and/#'
 *   [WHERE condition]
 *
 * with string and integer literals, `= <> AND OR NOT`, parentheses, and the functions
 * `topic()`, `topic(n)` (1-based), `clientid()`, `timestamp()` and `encode(*, 'base64')`, plus the
 * `${expr}` substitution templates of the Kinesis partition key. Comparisons follow IoT SQL's
 * three-valued logic: anything involving Undefined (e.g. `topic(9)` on a 3-level topic) is Undefined,
 * and WHERE keeps a message only when its condition is exactly true. Anything outside the subset fails
 * at startup with a ValidationError naming the rule and the position.
 */
import { ValidationError } from '../../functions/core/errors.js';
import { splitBasicIngest } from '../../functions/core/topics.js';
import type { RuleDef, StreamKey } from '../pipeline.js';

/** What `clientid()` returns for a message not sent over MQTT (IoT data-plane Publish). */
export const NO_CLIENT_ID = 'n/a';

export interface RuleMessage {
  topic: string;
  payload: Uint8Array;
  clientId: string;
  /** Milliseconds since the epoch: `timestamp()`. */
  timestamp: number;
}

type Value = string | number | boolean | undefined;

type Expr =
  | { kind: 'lit'; value: string | number }
  | { kind: 'call'; fn: 'topic' | 'clientid' | 'timestamp' | 'encode'; args: Array<Expr | '*'> }
  | { kind: 'not'; expr: Expr }
  | { kind: 'bin'; op: '=' | '<>' | 'AND' | 'OR'; left: Expr; right: Expr };

export interface ParsedRuleSql {
  /** `undefined` for `SELECT *` (the payload is forwarded as is). */
  select: Array<{ alias: string; expr: Expr }> | undefined;
  from: string;
  where: Expr | undefined;
}

export interface CompiledRule {
  name: string;
  stream: StreamKey;
  filter: string;
  matches(topic: string): boolean;
  where(msg: RuleMessage): boolean;
  /** The Kinesis record data: the JSON object of the SELECT list, or the raw payload for `SELECT *`. */
  data(msg: RuleMessage): Buffer;
  /** The rendered partition-key template; throws RuleActionError if Kinesis would refuse it. */
  partitionKey(msg: RuleMessage): string;
}

/** The rule matched but its action cannot run (what IoT sends to the rule's error action). */
export class RuleActionError extends Error {
  override readonly name = 'RuleActionError';
  constructor(
    readonly rule: string,
    message: string,
  ) {
    super(`rule ${rule}: ${message}`);
  }
}

// ---- lexer ------------------------------------------------------------------------------------------

type Tok =
  | { t: 'num'; v: number; at: number }
  | { t: 'str'; v: string; at: number }
  | { t: 'id'; v: string; at: number }
  | { t: 'op'; v: '<>' | '=' | '(' | ')' | ',' | '*'; at: number };

const LEX = /\s*(?:(\d+)|'((?:[^']|'')*)'|([A-Za-z_][A-Za-z0-9_]*)|(<>|=|\(|\)|,|\*))/y;

function tokenize(src: string, where: string): Tok[] {
  const out: Tok[] = [];
  let pos = 0;
  for (;;) {
    while (pos < src.length && /\s/.test(src[pos]!)) pos++;
    if (pos >= src.length) return out;
    LEX.lastIndex = pos;
    const m = LEX.exec(src);
    if (!m) throw sqlError(where, `unsupported or malformed text at ${pos}: "${src.slice(pos, pos + 24)}"`);
    const at = pos + (m[0].length - m[0].trimStart().length);
    if (m[1] !== undefined) out.push({ t: 'num', v: Number(m[1]), at });
    else if (m[2] !== undefined) out.push({ t: 'str', v: m[2].replace(/''/g, "'"), at });
    else if (m[3] !== undefined) out.push({ t: 'id', v: m[3], at });
    else out.push({ t: 'op', v: m[4] as '<>', at });
    pos = LEX.lastIndex;
  }
}

function sqlError(where: string, message: string): ValidationError {
  return new ValidationError(`${where}: ${message}`, { field: 'sql', code: 'RULE_SQL_UNSUPPORTED' });
}

// ---- parser (recursive descent: or → and → not → comparison → primary) -------------------------------

const KEYWORDS = new Set(['SELECT', 'FROM', 'WHERE', 'AS', 'AND', 'OR', 'NOT']);

class Parser {
  private i = 0;
  constructor(
    private readonly toks: Tok[],
    private readonly where: string,
  ) {}

  private fail(message: string, tok = this.toks[this.i]): never {
    throw sqlError(this.where, `${message} (at ${tok ? `offset ${tok.at}` : 'the end'})`);
  }
  peek(): Tok | undefined {
    return this.toks[this.i];
  }
  isWord(word: string, tok = this.peek()): boolean {
    return tok?.t === 'id' && tok.v.toUpperCase() === word;
  }
  isOp(op: string, tok = this.peek()): boolean {
    return tok?.t === 'op' && tok.v === op;
  }
  next(): Tok {
    const tok = this.toks[this.i++];
    if (tok === undefined) this.fail('unexpected end of statement');
    return tok;
  }
  expectWord(word: string): void {
    if (!this.isWord(word)) this.fail(`expected ${word}`);
    this.i++;
  }
  expectOp(op: string): void {
    if (!this.isOp(op)) this.fail(`expected "${op}"`);
    this.i++;
  }
  done(): boolean {
    return this.i >= this.toks.length;
  }

  statement(): ParsedRuleSql {
    this.expectWord('SELECT');
    let select: ParsedRuleSql['select'];
    if (this.isOp('*')) this.i++;
    else {
      select = [];
      for (;;) {
        const expr = this.or();
        if (!this.isWord('AS')) this.fail('every SELECT expression needs "AS alias"');
        this.i++;
        const alias = this.next();
        if (alias.t !== 'id' || KEYWORDS.has(alias.v.toUpperCase())) this.fail('expected an alias name');
        if (select.some((s) => s.alias === alias.v)) this.fail(`duplicate alias "${alias.v}"`);
        select.push({ alias: alias.v, expr });
        if (!this.isOp(',')) break;
        this.i++;
      }
    }
    this.expectWord('FROM');
    const from = this.next();
    if (from.t !== 'str') this.fail('FROM needs a quoted topic filter');
    checkTopicFilter(from.v, this.where);
    let where: Expr | undefined;
    if (!this.done()) {
      this.expectWord('WHERE');
      where = this.or();
    }
    if (!this.done()) this.fail(`unexpected "${String(this.peek()?.v)}" after the statement`);
    return { select, from: from.v, where };
  }

  expression(): Expr {
    const e = this.or();
    if (!this.done()) this.fail(`unexpected "${String(this.peek()?.v)}"`);
    return e;
  }

  or(): Expr {
    let left = this.and();
    while (this.isWord('OR')) {
      this.i++;
      left = { kind: 'bin', op: 'OR', left, right: this.and() };
    }
    return left;
  }
  and(): Expr {
    let left = this.not();
    while (this.isWord('AND')) {
      this.i++;
      left = { kind: 'bin', op: 'AND', left, right: this.not() };
    }
    return left;
  }
  not(): Expr {
    if (this.isWord('NOT')) {
      this.i++;
      return { kind: 'not', expr: this.not() };
    }
    return this.comparison();
  }
  comparison(): Expr {
    const left = this.primary();
    const op = this.peek();
    if (op?.t === 'op' && (op.v === '=' || op.v === '<>')) {
      this.i++;
      return { kind: 'bin', op: op.v, left, right: this.primary() };
    }
    return left;
  }
  primary(): Expr {
    const tok = this.next();
    if (tok.t === 'op' && tok.v === '(') {
      const e = this.or();
      this.expectOp(')');
      return e;
    }
    if (tok.t === 'str' || tok.t === 'num') return { kind: 'lit', value: tok.v };
    if (tok.t === 'id' && this.isOp('(')) {
      this.i++;
      const args: Array<Expr | '*'> = [];
      if (!this.isOp(')')) {
        for (;;) {
          if (this.isOp('*')) {
            this.i++;
            args.push('*');
          } else args.push(this.or());
          if (this.isOp(')')) break;
          this.expectOp(',');
        }
      }
      this.i++;
      return this.checkCall(tok, args);
    }
    return this.fail(`unsupported token "${String(tok.v)}"`, tok);
  }

  /** Arity and argument checks at parse time, so nothing can fail later at evaluation. */
  private checkCall(tok: Tok, args: Array<Expr | '*'>): Expr {
    const fn = String(tok.v).toLowerCase();
    const star = args.some((a) => a === '*');
    switch (fn) {
      case 'topic':
        if (args.length === 0) return { kind: 'call', fn, args };
        if (
          args.length === 1 &&
          args[0] !== '*' &&
          args[0]!.kind === 'lit' &&
          typeof args[0]!.value === 'number'
        )
          if (args[0]!.value >= 1) return { kind: 'call', fn, args };
        return this.fail('topic() takes no argument or one level number ≥ 1', tok);
      case 'clientid':
      case 'timestamp':
        if (args.length > 0) this.fail(`${fn}() takes no arguments`, tok);
        return { kind: 'call', fn, args };
      case 'encode': {
        const enc = args[1];
        if (
          args.length === 2 &&
          args[0] === '*' &&
          enc !== '*' &&
          enc?.kind === 'lit' &&
          enc.value === 'base64'
        )
          return { kind: 'call', fn, args };
        return this.fail("only encode(*, 'base64') is supported", tok);
      }
      default:
        if (star) this.fail('* is only valid in SELECT * and encode(*, ...)', tok);
        return this.fail(`unsupported function ${fn}()`, tok);
    }
  }
}

function checkTopicFilter(filter: string, where: string): void {
  const levels = filter.split('/');
  levels.forEach((level, i) => {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1))
      throw sqlError(where, `topic filter "${filter}": # must be a whole last level`);
    if (level.includes('+') && level !== '+')
      throw sqlError(where, `topic filter "${filter}": + must be a whole level`);
  });
  if (filter.length === 0) throw sqlError(where, 'empty topic filter');
}

export function parseRuleSql(sql: string, where = 'rule SQL'): ParsedRuleSql {
  return new Parser(tokenize(sql, where), where).statement();
}

// ---- evaluation -------------------------------------------------------------------------------------

function evaluate(e: Expr, msg: RuleMessage): Value {
  switch (e.kind) {
    case 'lit':
      return e.value;
    case 'not': {
      const v = evaluate(e.expr, msg);
      return typeof v === 'boolean' ? !v : undefined;
    }
    case 'bin': {
      const l = evaluate(e.left, msg);
      const r = evaluate(e.right, msg);
      if (e.op === 'AND' || e.op === 'OR') {
        if (typeof l !== 'boolean' || typeof r !== 'boolean') return undefined;
        return e.op === 'AND' ? l && r : l || r;
      }
      if (l === undefined || r === undefined) return undefined;
      return e.op === '=' ? l === r : l !== r;
    }
    case 'call':
      switch (e.fn) {
        case 'topic': {
          if (e.args.length === 0) return msg.topic;
          const n = (e.args[0] as { value: number }).value;
          return msg.topic.split('/')[n - 1];
        }
        case 'clientid':
          return msg.clientId;
        case 'timestamp':
          return msg.timestamp;
        case 'encode':
          return Buffer.from(msg.payload.buffer, msg.payload.byteOffset, msg.payload.byteLength).toString(
            'base64',
          );
      }
  }
}

/** MQTT topic filter match (+ one level, # this level and everything below). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

type Template = Array<string | Expr>;

function parseTemplate(template: string, where: string): Template {
  const out: Template = [];
  let rest = template;
  while (rest.length > 0) {
    const start = rest.indexOf('${');
    if (start < 0) {
      out.push(rest);
      break;
    }
    if (start > 0) out.push(rest.slice(0, start));
    const end = rest.indexOf('}', start);
    if (end < 0) throw sqlError(where, `unterminated \${ in template "${template}"`);
    out.push(new Parser(tokenize(rest.slice(start + 2, end), where), where).expression());
    rest = rest.slice(end + 1);
  }
  return out;
}

/** Kinesis partition keys: 1 to 256 Unicode characters. */
const MAX_PARTITION_KEY = 256;
/** A Kinesis record's data blob: at most 1 MiB (PutRecords refuses the whole call otherwise). */
export const KINESIS_MAX_RECORD_BYTES = 1024 * 1024;

export function compileRule(
  rule: Pick<RuleDef, 'name' | 'sql' | 'stream' | 'partitionKey'> & {
    sqlVersion?: string;
  },
): CompiledRule {
  const where = `rule ${rule.name}`;
  if (!/^[A-Za-z0-9_]{1,128}$/.test(rule.name))
    throw sqlError(where, 'rule names are 1-128 letters, digits and underscores');
  if (rule.sqlVersion !== undefined && rule.sqlVersion !== '2016-03-23')
    throw sqlError(where, `SQL version ${rule.sqlVersion} is not supported (use 2016-03-23)`);
  const parsed = parseRuleSql(rule.sql, where);
  const template = parseTemplate(rule.partitionKey, `${where} partition key`);
  const { select, from: filter, where: cond } = parsed;

  return {
    name: rule.name,
    stream: rule.stream,
    filter,
    matches: (topic) => topicMatches(filter, topic),
    where: (msg) => cond === undefined || evaluate(cond, msg) === true,
    data(msg) {
      if (select === undefined)
        return Buffer.from(msg.payload.buffer, msg.payload.byteOffset, msg.payload.byteLength);
      const obj: Record<string, Value> = {};
      // Undefined results are left out of the output object, as in IoT.
      for (const s of select) obj[s.alias] = evaluate(s.expr, msg);
      return Buffer.from(JSON.stringify(obj));
    },
    partitionKey(msg) {
      let key = '';
      for (const part of template) {
        if (typeof part === 'string') key += part;
        else {
          const v = evaluate(part, msg);
          if (v !== undefined) key += String(v);
        }
      }
      const length = [...key].length;
      if (length < 1 || length > MAX_PARTITION_KEY)
        throw new RuleActionError(rule.name, `partition key "${key.slice(0, 40)}" must be 1-256 characters`);
      return key;
    },
  };
}

export interface RuleOutput {
  rule: string;
  stream: StreamKey;
  partitionKey: string;
  /** The Kinesis record data (the JSON envelope). */
  data: Buffer;
}

export interface RuleEngine {
  readonly rules: readonly CompiledRule[];
  /**
   * Every rule that matches the message, with its record and partition key. A matching rule whose
   * action cannot run is reported through `onActionError` (IoT's error action) and skipped.
   */
  evaluate(topic: string, payload: Uint8Array, clientId: string): RuleOutput[];
}

export interface RuleEngineOptions {
  clock?: () => number;
  onActionError?: (error: RuleActionError, topic: string, clientId: string) => void;
}

/** Compiles every rule up front: unsupported SQL fails here, at startup. */
export function createRuleEngine(rules: readonly RuleDef[], options: RuleEngineOptions = {}): RuleEngine {
  const clock = options.clock ?? Date.now;
  const compiled = rules.map(compileRule);
  return {
    rules: compiled,
    evaluate(published, payload, clientId) {
      // Basic Ingest ($aws/rules/{rule}/{topic}): only the named rule runs, on {topic}; its FROM
      // filter is not consulted (AWS: FROM is optional for a rule invoked only that way).
      const ingest = splitBasicIngest(published);
      const topic = ingest.topic;
      const msg: RuleMessage = { topic, payload, clientId, timestamp: clock() };
      const out: RuleOutput[] = [];
      for (const r of compiled) {
        if (ingest.rule !== undefined ? r.name !== ingest.rule : !r.matches(topic)) continue;
        if (!r.where(msg)) continue;
        try {
          const partitionKey = r.partitionKey(msg);
          const data = r.data(msg);
          // Kinesis refuses a larger record: IoT's Kinesis action fails (error action), nothing is sent.
          if (data.length > KINESIS_MAX_RECORD_BYTES)
            throw new RuleActionError(
              r.name,
              `the record data is ${data.length} bytes, more than Kinesis' ${KINESIS_MAX_RECORD_BYTES} per record`,
            );
          out.push({ rule: r.name, stream: r.stream, partitionKey, data });
        } catch (error) {
          if (!(error instanceof RuleActionError)) throw error;
          options.onActionError?.(error, topic, clientId);
        }
      }
      return out;
    },
  };
}
