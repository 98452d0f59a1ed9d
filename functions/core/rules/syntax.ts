/**
 * The rule condition language: tokenizer, recursive-descent parser and type checker. A condition is
 * data, never JavaScript: the parser builds a typed tree, `compile.ts` turns it into closures over a
 * fixed evaluation context (the reading, its series' previous reading, its window, its anomaly score).
 * Grammar and semantics: docs/adr/0016-rules-and-alerts.md.
 *
 *   condition := 'absent' 'for' DURATION
 *              | 'offline' [ 'for' DURATION ]
 *              | 'on' EVENT
 *              | expr [ 'for' DURATION ] [ 'clear' ( CMPOP additive | expr ) ]
 *   expr      := and { 'or' and }
 *   and       := not { 'and' not }
 *   not       := 'not' not | compare
 *   compare   := additive [ CMPOP additive ]          CMPOP: > >= < <= == !=
 *   additive  := term { ('+' | '-') term }
 *   term      := unary { ('*' | '/' | '%') unary }
 *   unary     := '-' unary | primary
 *   primary   := NUMBER | 'true' | 'false' | 'value' | FUNC '(' [ arg { ',' arg } ] ')' | '(' expr ')'
 *   arg       := expr | DURATION
 */
import { ValidationError } from '../errors.js';
import type { LifecycleEventType } from '../reading.js';

/** A syntax or type error in a rule condition, with the 0-based character position it refers to. */
export class RuleSyntaxError extends ValidationError {
  readonly position: number;
  constructor(code: string, message: string, position: number, field = 'condition') {
    super(`${field}: ${message} at position ${position}`, { field, code });
    this.position = position;
  }

  override toJSON(): { code: string; message: string; field?: string; position: number } {
    return { ...super.toJSON(), position: this.position };
  }
}

export const LANGUAGE_LIMITS = {
  /** Characters of a condition. */
  length: 1000,
  /** Nesting depth of the expression tree. */
  depth: 32,
  /** Longest window, hold time or absence period (24 h). */
  durationMs: 86_400_000,
} as const;

// ---- tokens ------------------------------------------------------------------------------------

export type TokenKind = 'num' | 'dur' | 'ident' | 'op' | 'eof';

export interface Token {
  kind: TokenKind;
  text: string;
  pos: number;
  /** num: the value; dur: milliseconds. */
  value?: number;
  /** dur: the unit as written. */
  unit?: DurationUnit;
}

export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';
export const UNIT_MS: Record<DurationUnit, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const OPERATORS = ['>=', '<=', '==', '!=', '>', '<', '+', '-', '*', '/', '%', '(', ')', ','];
const HINTS: Record<string, string> = {
  '&&': "use 'and'",
  '||': "use 'or'",
  '!': "use 'not' (or '!=')",
  '=': "use '==' to compare",
  '.': 'member access is not part of the language',
  '[': 'indexing is not part of the language',
};

export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if ((c >= '0' && c <= '9') || (c === '.' && /[0-9]/.test(source[i + 1] ?? ''))) {
      const m = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(source.slice(i))!;
      i += m[0].length;
      const value = Number(m[0]);
      if (!Number.isFinite(value))
        throw new RuleSyntaxError('RULE_BAD_NUMBER', `number ${m[0]} is out of range`, start);
      const unitMatch = /^[A-Za-z_]+/.exec(source.slice(i));
      if (unitMatch) {
        const unit = unitMatch[0];
        if (!(unit in UNIT_MS)) {
          throw new RuleSyntaxError(
            'RULE_BAD_DURATION',
            `unknown duration unit '${unit}' (use ms, s, m, h or d)`,
            i,
          );
        }
        i += unit.length;
        tokens.push({
          kind: 'dur',
          text: source.slice(start, i),
          pos: start,
          value: value * UNIT_MS[unit as DurationUnit],
          unit: unit as DurationUnit,
        });
      } else {
        tokens.push({ kind: 'num', text: m[0], pos: start, value });
      }
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i))!;
      i += m[0].length;
      tokens.push({ kind: 'ident', text: m[0], pos: start });
      continue;
    }
    const two = source.slice(i, i + 2);
    const op = OPERATORS.find((o) => o === two) ?? OPERATORS.find((o) => o === c);
    if (op && !(two === '&&' || two === '||')) {
      i += op.length;
      tokens.push({ kind: 'op', text: op, pos: start });
      continue;
    }
    const hint = HINTS[two] ?? HINTS[c];
    throw new RuleSyntaxError(
      'RULE_UNEXPECTED_CHARACTER',
      `unexpected character '${c}'${hint ? ` (${hint})` : ''}`,
      start,
    );
  }
  tokens.push({ kind: 'eof', text: '', pos: source.length });
  return tokens;
}

// ---- tree --------------------------------------------------------------------------------------

export interface Duration {
  /** Milliseconds. */
  ms: number;
  /** As written (e.g. 30s, 1.5m), so printing gives back the source's units. */
  text: string;
}

export type ArithOp = '+' | '-' | '*' | '/' | '%';
export type CompareOp = '>' | '>=' | '<' | '<=' | '==' | '!=';

export type Expr =
  | { k: 'num'; v: number; pos: number }
  | { k: 'bool'; v: boolean; pos: number }
  | { k: 'value'; pos: number }
  | { k: 'neg'; e: Expr; pos: number }
  | { k: 'not'; e: Expr; pos: number }
  | { k: 'arith'; op: ArithOp; l: Expr; r: Expr; pos: number }
  | { k: 'cmp'; op: CompareOp; l: Expr; r: Expr; pos: number }
  | { k: 'logic'; op: 'and' | 'or'; l: Expr; r: Expr; pos: number }
  | { k: 'call'; fn: FunctionName; args: Expr[]; window?: Duration; pos: number };

export type Condition =
  | { kind: 'expr'; when: Expr; hold?: Duration; clear?: Expr }
  | { kind: 'absent'; after: Duration }
  | { kind: 'offline'; hold?: Duration }
  | { kind: 'event'; event: LifecycleEventType };

/**
 * The whitelist. `window`: the function takes a trailing DURATION (the sliding window, or for rate the
 * unit of time); `args`: how many numeric arguments come before it; `literal`: those must be number
 * literals (percentile's rank).
 */
export const FUNCTIONS = {
  abs: { args: 1, window: false, literal: false },
  delta: { args: 0, window: false, literal: false },
  rate: { args: 0, window: true, literal: false },
  mean: { args: 0, window: true, literal: false },
  stddev: { args: 0, window: true, literal: false },
  min: { args: 0, window: true, literal: false },
  max: { args: 0, window: true, literal: false },
  median: { args: 0, window: true, literal: false },
  count: { args: 0, window: true, literal: false },
  zscore: { args: 0, window: true, literal: false },
  percentile: { args: 1, window: true, literal: true },
  anomaly: { args: 0, window: false, literal: false },
} as const satisfies Record<string, { args: number; window: boolean; literal: boolean }>;

export type FunctionName = keyof typeof FUNCTIONS;

/** Lifecycle events a rule can react to (`on rebirth_requested`), written with '_' for '-'. */
export const RULE_EVENTS: readonly LifecycleEventType[] = [
  'birth',
  'death',
  'stale',
  'rebirth-requested',
  'seq-gap',
  'register',
  'update',
  'deregister',
  'expired',
  'quarantined',
];
/** Short names accepted for events (`on rebirth` = a rebirth the host requested). */
const EVENT_ALIASES: Record<string, LifecycleEventType> = { rebirth: 'rebirth-requested', gap: 'seq-gap' };

const KEYWORDS = new Set([
  'and',
  'or',
  'not',
  'true',
  'false',
  'value',
  'for',
  'clear',
  'absent',
  'offline',
  'on',
]);

// ---- parser ------------------------------------------------------------------------------------

type Type = 'number' | 'boolean';

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly t: Token[]) {}

  private get peek(): Token {
    return this.t[this.i]!;
  }

  private next(): Token {
    const tok = this.t[this.i]!;
    if (tok.kind !== 'eof') this.i++;
    return tok;
  }

  private isOp(text: string): boolean {
    return this.peek.kind === 'op' && this.peek.text === text;
  }

  private isWord(text: string): boolean {
    return this.peek.kind === 'ident' && this.peek.text === text;
  }

  private expectOp(text: string, what: string): Token {
    if (!this.isOp(text)) this.unexpected(`expected '${text}' ${what}`);
    return this.next();
  }

  private unexpected(expected: string): never {
    const tok = this.peek;
    const found = tok.kind === 'eof' ? 'end of condition' : `'${tok.text}'`;
    throw new RuleSyntaxError('RULE_UNEXPECTED_TOKEN', `${expected}, found ${found}`, tok.pos);
  }

  private duration(what: string): Duration {
    const tok = this.peek;
    if (tok.kind !== 'dur') this.unexpected(`expected a duration (e.g. 30s, 5m) ${what}`);
    this.next();
    return checkDuration(tok);
  }

  condition(): Condition {
    let c: Condition;
    if (this.isWord('absent')) {
      this.next();
      if (!this.isWord('for')) this.unexpected("expected 'for' after 'absent'");
      this.next();
      c = { kind: 'absent', after: this.duration("after 'absent for'") };
    } else if (this.isWord('offline')) {
      this.next();
      c = { kind: 'offline' };
      if (this.isWord('for')) {
        this.next();
        c.hold = this.duration("after 'for'");
      }
    } else if (this.isWord('on')) {
      this.next();
      const tok = this.peek;
      if (tok.kind !== 'ident') this.unexpected("expected an event name after 'on'");
      this.next();
      const name = EVENT_ALIASES[tok.text] ?? (tok.text.replaceAll('_', '-') as LifecycleEventType);
      if (!RULE_EVENTS.includes(name)) {
        throw new RuleSyntaxError(
          'RULE_UNKNOWN_EVENT',
          `unknown event '${tok.text}' (one of ${RULE_EVENTS.map((e) => e.replaceAll('-', '_')).join(', ')}, rebirth)`,
          tok.pos,
        );
      }
      c = { kind: 'event', event: name };
    } else {
      const when = this.expr();
      checkType(when, 'boolean', 'the condition');
      c = { kind: 'expr', when };
      if (this.isWord('for')) {
        this.next();
        c.hold = this.duration("after 'for'");
      }
      if (this.isWord('clear')) {
        this.next();
        const at = this.peek;
        let clear: Expr;
        if (at.kind === 'op' && ['>', '>=', '<', '<=', '==', '!='].includes(at.text)) {
          // Shorthand: `clear < 75` compares the reading's value.
          this.next();
          const r = this.additive();
          clear = { k: 'cmp', op: at.text as CompareOp, l: { k: 'value', pos: at.pos }, r, pos: at.pos };
          checkType(clear, 'boolean', "'clear'");
        } else {
          clear = this.expr();
          checkType(clear, 'boolean', "the 'clear' condition");
        }
        c.clear = clear;
      }
    }
    if (this.peek.kind !== 'eof') {
      this.unexpected(
        c.kind === 'expr' ? "expected an operator, 'for', 'clear' or the end" : 'expected the end',
      );
    }
    return c;
  }

  private enter(pos: number): void {
    if (++this.depth > LANGUAGE_LIMITS.depth) {
      throw new RuleSyntaxError('RULE_TOO_DEEP', `nesting deeper than ${LANGUAGE_LIMITS.depth}`, pos);
    }
  }

  expr(): Expr {
    this.enter(this.peek.pos);
    let l = this.and();
    while (this.isWord('or')) {
      const pos = this.next().pos;
      const r = this.and();
      l = { k: 'logic', op: 'or', l: bool(l, "'or'"), r: bool(r, "'or'"), pos };
    }
    this.depth--;
    return l;
  }

  private and(): Expr {
    let l = this.not();
    while (this.isWord('and')) {
      const pos = this.next().pos;
      const r = this.not();
      l = { k: 'logic', op: 'and', l: bool(l, "'and'"), r: bool(r, "'and'"), pos };
    }
    return l;
  }

  private not(): Expr {
    if (this.isWord('not')) {
      const pos = this.next().pos;
      this.enter(pos);
      const e = this.not();
      this.depth--;
      return { k: 'not', e: bool(e, "'not'"), pos };
    }
    return this.compare();
  }

  private compare(): Expr {
    const l = this.additive();
    const tok = this.peek;
    if (tok.kind === 'op' && ['>', '>=', '<', '<=', '==', '!='].includes(tok.text)) {
      this.next();
      const r = this.additive();
      const op = tok.text as CompareOp;
      const lt = typeOf(l);
      if (op === '==' || op === '!=') {
        if (lt !== typeOf(r)) {
          throw new RuleSyntaxError('RULE_TYPE', `'${op}' compares a ${lt} with a ${typeOf(r)}`, tok.pos);
        }
      } else {
        num(l, `'${op}'`);
        num(r, `'${op}'`);
      }
      const next = this.peek;
      if (next.kind === 'op' && ['>', '>=', '<', '<=', '==', '!='].includes(next.text)) {
        throw new RuleSyntaxError(
          'RULE_CHAINED_COMPARISON',
          "comparisons do not chain (write 'a < b and b < c')",
          next.pos,
        );
      }
      return { k: 'cmp', op, l, r, pos: tok.pos };
    }
    return l;
  }

  private additive(): Expr {
    let l = this.term();
    while (this.isOp('+') || this.isOp('-')) {
      const tok = this.next();
      const r = this.term();
      l = {
        k: 'arith',
        op: tok.text as ArithOp,
        l: num(l, `'${tok.text}'`),
        r: num(r, `'${tok.text}'`),
        pos: tok.pos,
      };
    }
    return l;
  }

  private term(): Expr {
    let l = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const tok = this.next();
      const r = this.unary();
      l = {
        k: 'arith',
        op: tok.text as ArithOp,
        l: num(l, `'${tok.text}'`),
        r: num(r, `'${tok.text}'`),
        pos: tok.pos,
      };
    }
    return l;
  }

  private unary(): Expr {
    if (this.isOp('-')) {
      const pos = this.next().pos;
      this.enter(pos);
      const e = this.unary();
      this.depth--;
      return { k: 'neg', e: num(e, "'-'"), pos };
    }
    return this.primary();
  }

  private primary(): Expr {
    const tok = this.peek;
    if (tok.kind === 'num') {
      this.next();
      return { k: 'num', v: tok.value!, pos: tok.pos };
    }
    if (tok.kind === 'dur') {
      throw new RuleSyntaxError(
        'RULE_TYPE',
        `a duration (${tok.text}) is only allowed after 'for' or as a window argument`,
        tok.pos,
      );
    }
    if (tok.kind === 'op' && tok.text === '(') {
      this.next();
      const e = this.expr();
      this.expectOp(')', 'to close the parenthesis');
      return e;
    }
    if (tok.kind === 'ident') {
      this.next();
      if (tok.text === 'true' || tok.text === 'false')
        return { k: 'bool', v: tok.text === 'true', pos: tok.pos };
      if (tok.text === 'value') return { k: 'value', pos: tok.pos };
      if (this.isOp('(')) return this.call(tok);
      if (Object.hasOwn(FUNCTIONS, tok.text)) {
        throw new RuleSyntaxError(
          'RULE_UNEXPECTED_TOKEN',
          `function '${tok.text}' needs '(...)'`,
          this.peek.pos,
        );
      }
      if (KEYWORDS.has(tok.text)) {
        throw new RuleSyntaxError(
          'RULE_UNEXPECTED_TOKEN',
          `'${tok.text}' cannot start an expression`,
          tok.pos,
        );
      }
      throw new RuleSyntaxError(
        'RULE_UNKNOWN_IDENTIFIER',
        `unknown name '${tok.text}' (the only variable is 'value')`,
        tok.pos,
      );
    }
    this.unexpected('expected a number, value, a function or (');
  }

  private call(name: Token): Expr {
    if (!Object.hasOwn(FUNCTIONS, name.text)) {
      throw new RuleSyntaxError(
        'RULE_UNKNOWN_FUNCTION',
        `unknown function '${name.text}' (allowed: ${Object.keys(FUNCTIONS).join(', ')})`,
        name.pos,
      );
    }
    const fn = name.text as FunctionName;
    const spec = FUNCTIONS[fn];
    this.expectOp('(', `after '${fn}'`);
    const args: Expr[] = [];
    let window: Duration | undefined;
    const wanted = spec.args + (spec.window ? 1 : 0);
    const signature = `${fn}(${[...Array.from({ length: spec.args }, () => 'number'), ...(spec.window ? ['duration'] : [])].join(', ')})`;
    if (!this.isOp(')')) {
      for (;;) {
        const at = this.peek;
        const index = args.length + (window ? 1 : 0);
        if (index >= wanted) {
          throw new RuleSyntaxError('RULE_ARITY', `too many arguments: ${signature}`, at.pos);
        }
        if (spec.window && index === spec.args) {
          if (at.kind !== 'dur') {
            throw new RuleSyntaxError(
              'RULE_ARITY',
              `argument ${index + 1} of ${signature} must be a duration (e.g. 5m)`,
              at.pos,
            );
          }
          this.next();
          window = checkDuration(at);
        } else {
          const e = this.expr();
          num(e, `argument ${index + 1} of ${fn}`);
          if (spec.literal && e.k !== 'num') {
            throw new RuleSyntaxError(
              'RULE_TYPE',
              `argument ${index + 1} of ${fn} must be a number literal`,
              at.pos,
            );
          }
          if (fn === 'percentile' && e.k === 'num' && (e.v < 0 || e.v > 100)) {
            throw new RuleSyntaxError('RULE_RANGE', 'percentile rank must be within 0-100', at.pos);
          }
          args.push(e);
        }
        if (!this.isOp(',')) break;
        this.next();
      }
    }
    if (args.length + (window ? 1 : 0) < wanted) {
      throw new RuleSyntaxError('RULE_ARITY', `too few arguments: ${signature}`, this.peek.pos);
    }
    this.expectOp(')', `to close ${fn}(`);
    return window ? { k: 'call', fn, args, window, pos: name.pos } : { k: 'call', fn, args, pos: name.pos };
  }
}

function checkDuration(tok: Token): Duration {
  const ms = tok.value!;
  if (!(ms > 0) || ms > LANGUAGE_LIMITS.durationMs || !Number.isInteger(ms)) {
    throw new RuleSyntaxError(
      'RULE_BAD_DURATION',
      `duration ${tok.text} must be a whole number of milliseconds between 1ms and 24h`,
      tok.pos,
    );
  }
  return { ms, text: tok.text };
}

export function typeOf(e: Expr): Type {
  switch (e.k) {
    case 'num':
    case 'value':
    case 'neg':
    case 'arith':
    case 'call':
      return 'number';
    default:
      return 'boolean';
  }
}

function checkType(e: Expr, want: Type, what: string): Expr {
  const got = typeOf(e);
  if (got !== want) throw new RuleSyntaxError('RULE_TYPE', `${what} must be a ${want}, not a ${got}`, e.pos);
  return e;
}

const num = (e: Expr, what: string) => checkType(e, 'number', `the operand of ${what}`);
const bool = (e: Expr, what: string) => checkType(e, 'boolean', `the operand of ${what}`);

/** Parses and type-checks a condition. Throws RuleSyntaxError naming the position. */
export function parseCondition(source: string): Condition {
  if (typeof source !== 'string') throw new RuleSyntaxError('RULE_EMPTY', 'must be a string', 0);
  if (source.length > LANGUAGE_LIMITS.length) {
    throw new RuleSyntaxError(
      'RULE_TOO_LONG',
      `longer than ${LANGUAGE_LIMITS.length} characters`,
      LANGUAGE_LIMITS.length,
    );
  }
  if (source.trim() === '') throw new RuleSyntaxError('RULE_EMPTY', 'is empty', 0);
  return new Parser(tokenize(source)).condition();
}
