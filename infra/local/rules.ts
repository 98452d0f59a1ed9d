/**
 * The local IoT rule engine: evaluates the SAME rule SQL (infra/pipeline.ts) the CDK stack deploys, for
 * the subset of IoT SQL 2016-03-23 we use — SELECT of `fn(args) AS alias` (or *), FROM 'topic filter',
 * WHERE with topic(n), clientid(), string literals, = <> AND OR NOT and parentheses — and renders the
 * Kinesis partition key substitution template. Anything else fails at startup, loudly.
 */
import { ValidationError } from '../../functions/core/errors.js';
import type { RuleDef, StreamKey } from '../pipeline.js';

export interface RuleContext {
  topic: string;
  payload: Uint8Array;
  clientId: string;
  timestamp: number;
}

type Value = string | number | boolean | null;
type Expr =
  | { kind: 'lit'; value: Value }
  | { kind: 'call'; fn: string; args: Array<Expr | '*'> }
  | { kind: 'not'; expr: Expr }
  | { kind: 'bin'; op: '=' | '<>' | 'AND' | 'OR'; left: Expr; right: Expr };

export interface CompiledRule {
  name: string;
  stream: StreamKey;
  filter: string;
  matches(topic: string): boolean;
  where(ctx: RuleContext): boolean;
  select(ctx: RuleContext): Record<string, Value>;
  partitionKey(ctx: RuleContext): string;
}

// ---- lexer/parser ----------------------------------------------------------------------------------

const TOKEN = /\s*(?:(\d+)|'((?:[^']|'')*)'|([A-Za-z_][A-Za-z0-9_]*)|(<>|=|\(|\)|,|\*))/y;

function tokenize(sql: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < sql.length) {
    if (/^\s*$/.test(sql.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(sql);
    if (!m)
      throw new ValidationError(`rule SQL: unexpected text at "${sql.slice(pos, pos + 20)}"`, {
        field: 'sql',
      });
    out.push(m[1] ?? (m[2] !== undefined ? `'${m[2]}` : (m[3] ?? m[4]!)));
    pos = TOKEN.lastIndex;
  }
  return out;
}

class Parser {
  private i = 0;
  constructor(private readonly t: string[]) {}

  peek(): string | undefined {
    return this.t[this.i];
  }
  next(): string {
    const tok = this.t[this.i++];
    if (tok === undefined) throw new ValidationError('rule SQL: unexpected end', { field: 'sql' });
    return tok;
  }
  expect(word: string): void {
    const tok = this.next();
    if (tok.toUpperCase() !== word)
      throw new ValidationError(`rule SQL: expected ${word}, got "${tok}"`, { field: 'sql' });
  }
  done(): boolean {
    return this.i >= this.t.length;
  }

  or(): Expr {
    let left = this.and();
    while (this.peek()?.toUpperCase() === 'OR') {
      this.next();
      left = { kind: 'bin', op: 'OR', left, right: this.and() };
    }
    return left;
  }
  and(): Expr {
    let left = this.not();
    while (this.peek()?.toUpperCase() === 'AND') {
      this.next();
      left = { kind: 'bin', op: 'AND', left, right: this.not() };
    }
    return left;
  }
  not(): Expr {
    if (this.peek()?.toUpperCase() === 'NOT') {
      this.next();
      return { kind: 'not', expr: this.not() };
    }
    return this.cmp();
  }
  cmp(): Expr {
    const left = this.primary();
    const op = this.peek();
    if (op === '=' || op === '<>') {
      this.next();
      return { kind: 'bin', op, left, right: this.primary() };
    }
    return left;
  }
  primary(): Expr {
    const tok = this.next();
    if (tok === '(') {
      const e = this.or();
      this.expect(')');
      return e;
    }
    if (tok.startsWith("'")) return { kind: 'lit', value: tok.slice(1).replace(/''/g, "'") };
    if (/^\d+$/.test(tok)) return { kind: 'lit', value: Number(tok) };
    if (/^[A-Za-z_]/.test(tok) && this.peek() === '(') {
      this.next();
      const args: Array<Expr | '*'> = [];
      while (this.peek() !== ')') {
        if (this.peek() === '*') {
          this.next();
          args.push('*');
        } else args.push(this.or());
        if (this.peek() === ',') this.next();
        else if (this.peek() !== ')')
          throw new ValidationError(`rule SQL: expected , or ) in ${tok}()`, { field: 'sql' });
      }
      this.next();
      return { kind: 'call', fn: tok.toLowerCase(), args };
    }
    throw new ValidationError(`rule SQL: unsupported token "${tok}"`, { field: 'sql' });
  }
}

// ---- evaluation ----------------------------------------------------------------------------------

const FUNCTIONS = new Set(['topic', 'clientid', 'timestamp', 'encode']);

function evaluate(e: Expr | '*', ctx: RuleContext): Value {
  if (e === '*') throw new ValidationError('rule SQL: * is only valid inside encode()', { field: 'sql' });
  switch (e.kind) {
    case 'lit':
      return e.value;
    case 'not':
      return !truthy(evaluate(e.expr, ctx));
    case 'bin': {
      if (e.op === 'AND') return truthy(evaluate(e.left, ctx)) && truthy(evaluate(e.right, ctx));
      if (e.op === 'OR') return truthy(evaluate(e.left, ctx)) || truthy(evaluate(e.right, ctx));
      const l = evaluate(e.left, ctx);
      const r = evaluate(e.right, ctx);
      // IoT SQL: comparisons with an undefined operand are undefined, which WHERE treats as false.
      if (l === null || r === null) return null;
      return e.op === '=' ? l === r : l !== r;
    }
    case 'call':
      return call(e.fn, e.args, ctx);
  }
}

function call(fn: string, args: Array<Expr | '*'>, ctx: RuleContext): Value {
  switch (fn) {
    case 'topic': {
      if (args.length === 0) return ctx.topic;
      const n = evaluate(args[0]!, ctx);
      const level = typeof n === 'number' ? ctx.topic.split('/')[n - 1] : undefined;
      return level === undefined ? null : level;
    }
    case 'clientid':
      return ctx.clientId;
    case 'timestamp':
      return ctx.timestamp;
    case 'encode': {
      const enc = args[1] === undefined || args[1] === '*' ? undefined : evaluate(args[1], ctx);
      if (args[0] !== '*' || enc !== 'base64')
        throw new ValidationError("rule SQL: only encode(*, 'base64') is supported", { field: 'sql' });
      return Buffer.from(ctx.payload.buffer, ctx.payload.byteOffset, ctx.payload.byteLength).toString(
        'base64',
      );
    }
    default:
      throw new ValidationError(`rule SQL: unsupported function ${fn}()`, { field: 'sql' });
  }
}

function truthy(v: Value): boolean {
  return v === true;
}

function checkFunctions(e: Expr | '*'): void {
  if (e === '*') return;
  if (e.kind === 'call') {
    if (!FUNCTIONS.has(e.fn))
      throw new ValidationError(`rule SQL: unsupported function ${e.fn}()`, { field: 'sql' });
    e.args.forEach(checkFunctions);
  } else if (e.kind === 'not') checkFunctions(e.expr);
  else if (e.kind === 'bin') {
    checkFunctions(e.left);
    checkFunctions(e.right);
  }
}

/** MQTT topic filter match (+ one level, # the rest). */
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

export function compileRule(rule: RuleDef): CompiledRule {
  const p = new Parser(tokenize(rule.sql));
  p.expect('SELECT');
  const select: Array<{ alias: string; expr: Expr }> = [];
  for (;;) {
    const expr = p.or();
    checkFunctions(expr);
    p.expect('AS');
    select.push({ alias: p.next(), expr });
    if (p.peek() !== ',') break;
    p.next();
  }
  p.expect('FROM');
  const from = p.next();
  if (!from.startsWith("'"))
    throw new ValidationError('rule SQL: FROM needs a quoted topic filter', { field: 'sql' });
  const filter = from.slice(1);
  let where: Expr | undefined;
  if (!p.done()) {
    p.expect('WHERE');
    where = p.or();
    checkFunctions(where);
  }
  if (!p.done())
    throw new ValidationError(`rule SQL: unexpected "${p.peek()}" after the statement`, { field: 'sql' });

  const template = rule.partitionKey;
  const parts = template.split(/(\$\{[^}]+\})/g).map((part) => {
    const m = /^\$\{(.+)\}$/.exec(part);
    if (!m) return part;
    const e = new Parser(tokenize(m[1]!)).or();
    checkFunctions(e);
    return e;
  });

  return {
    name: rule.name,
    stream: rule.stream,
    filter,
    matches: (topic) => topicMatches(filter, topic),
    where: (ctx) => where === undefined || truthy(evaluate(where, ctx)),
    select: (ctx) => Object.fromEntries(select.map((s) => [s.alias, evaluate(s.expr, ctx)])),
    partitionKey: (ctx) =>
      parts.map((part) => (typeof part === 'string' ? part : String(evaluate(part, ctx) ?? ''))).join(''),
  };
}

export interface RuleOutput {
  rule: string;
  stream: StreamKey;
  partitionKey: string;
  data: Buffer;
}

/** Every rule that matches the message, with its JSON envelope and partition key. */
export function createRuleEngine(rules: readonly RuleDef[]): {
  evaluate(ctx: RuleContext): RuleOutput[];
  rules: CompiledRule[];
} {
  const compiled = rules.map(compileRule);
  return {
    rules: compiled,
    evaluate(ctx) {
      const out: RuleOutput[] = [];
      for (const r of compiled) {
        if (!r.matches(ctx.topic) || !r.where(ctx)) continue;
        out.push({
          rule: r.name,
          stream: r.stream,
          partitionKey: r.partitionKey(ctx),
          data: Buffer.from(JSON.stringify(r.select(ctx))),
        });
      }
      return out;
    },
  };
}
