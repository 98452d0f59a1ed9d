/**
 * Prints a condition tree back to source. Canonical: single spaces, parentheses only where precedence
 * needs them, durations as written. `parseCondition(printCondition(c))` gives `c` back (positions aside).
 */
import type { Condition, Expr } from './syntax.js';

const PRECEDENCE = { or: 1, and: 2, not: 3, cmp: 4, add: 5, mul: 6, unary: 7, atom: 8 } as const;

function precedence(e: Expr): number {
  switch (e.k) {
    case 'logic':
      return e.op === 'or' ? PRECEDENCE.or : PRECEDENCE.and;
    case 'not':
      return PRECEDENCE.not;
    case 'cmp':
      return PRECEDENCE.cmp;
    case 'arith':
      return e.op === '+' || e.op === '-' ? PRECEDENCE.add : PRECEDENCE.mul;
    case 'neg':
      return PRECEDENCE.unary;
    default:
      return PRECEDENCE.atom;
  }
}

function wrap(e: Expr, min: number): string {
  const s = printExpr(e);
  return precedence(e) < min ? `(${s})` : s;
}

function printNumber(v: number): string {
  // String() gives the shortest decimal that reads back as the same double; negatives come from 'neg'.
  return String(v);
}

export function printExpr(e: Expr): string {
  switch (e.k) {
    case 'num':
      return printNumber(e.v);
    case 'bool':
      return e.v ? 'true' : 'false';
    case 'value':
      return 'value';
    case 'neg':
      return `-${wrap(e.e, PRECEDENCE.unary)}`;
    case 'not':
      return `not ${wrap(e.e, PRECEDENCE.not)}`;
    case 'logic': {
      // Left-associative: the right operand needs parentheses at equal precedence.
      const p = precedence(e);
      return `${wrap(e.l, p)} ${e.op} ${wrap(e.r, p + 1)}`;
    }
    case 'cmp':
      // Comparisons do not chain: both sides must bind tighter.
      return `${wrap(e.l, PRECEDENCE.add)} ${e.op} ${wrap(e.r, PRECEDENCE.add)}`;
    case 'arith': {
      const p = precedence(e);
      return `${wrap(e.l, p)} ${e.op} ${wrap(e.r, p + 1)}`;
    }
    case 'call': {
      const args = e.args.map((a) => printExpr(a));
      if (e.window) args.push(e.window.text);
      return `${e.fn}(${args.join(', ')})`;
    }
  }
}

export function printCondition(c: Condition): string {
  switch (c.kind) {
    case 'absent':
      return `absent for ${c.after.text}`;
    case 'offline':
      return c.hold ? `offline for ${c.hold.text}` : 'offline';
    case 'event':
      return `on ${c.event.replaceAll('-', '_')}`;
    case 'expr': {
      let s = printExpr(c.when);
      if (c.hold) s += ` for ${c.hold.text}`;
      if (c.clear) s += ` clear ${printExpr(c.clear)}`;
      return s;
    }
  }
}
