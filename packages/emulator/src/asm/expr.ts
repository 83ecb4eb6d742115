/**
 * Integer expressions of the assembler: decimal, 0x hex and 0b binary numbers, 'c' character
 * literals, symbols (labels, constants, `.local` labels), `$` (the address of the current
 * statement), unary - + ~, and the binary operators of C with C precedence:
 * `* / %`, `+ -`, `<< >>`, `&`, `^`, `|`. Values are exact integers (bigint); a field checks its
 * own range when the value is placed.
 */
import { AsmError, type SourcePos } from './errors.js';
import { readQuoted } from './lex.js';

export type Expr =
  | { readonly t: 'num'; readonly v: bigint }
  | { readonly t: 'sym'; readonly name: string }
  | { readonly t: 'here' }
  | { readonly t: 'un'; readonly op: string; readonly e: Expr }
  | { readonly t: 'bin'; readonly op: string; readonly l: Expr; readonly r: Expr };

type Token = { k: 'num'; v: bigint } | { k: 'sym'; name: string } | { k: 'op'; op: string };

const LEVELS: readonly (readonly string[])[] = [
  ['|'],
  ['^'],
  ['&'],
  ['<<', '>>'],
  ['+', '-'],
  ['*', '/', '%'],
];

function tokenize(text: string, pos: SourcePos): Token[] {
  const out: Token[] = [];
  const bad = (why: string) => new AsmError('syntax', `bad expression '${text}': ${why}`, pos);
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    const space = /^\s+/.exec(rest);
    const num = /^(0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)(?![A-Za-z0-9_.])/.exec(rest);
    const sym = /^[A-Za-z_.][A-Za-z0-9_.]*/.exec(rest);
    const op = /^(<<|>>|[-+*/%&|^~()$])/.exec(rest);
    if (space) {
      i += space[0].length;
    } else if (num) {
      out.push({ k: 'num', v: BigInt(num[0].toLowerCase()) });
      i += num[0].length;
    } else if (/^[0-9]/.test(rest)) {
      throw bad(`bad number '${/^[0-9A-Za-z_.]+/.exec(rest)![0]}'`);
    } else if (sym) {
      out.push({ k: 'sym', name: sym[0] });
      i += sym[0].length;
    } else if (rest[0] === "'") {
      const q = readQuoted(text, i, pos);
      if (q.bytes.length !== 1) throw bad('a character literal holds exactly one byte');
      out.push({ k: 'num', v: BigInt(q.bytes[0]!) });
      i = q.end;
    } else if (op) {
      out.push({ k: 'op', op: op[0] });
      i += op[0].length;
    } else {
      throw bad(`unexpected '${rest[0]}'`);
    }
  }
  return out;
}

/** Parses an expression; throws a `syntax` AsmError naming the text. */
export function parseExpr(text: string, pos: SourcePos): Expr {
  const toks = tokenize(text, pos);
  let i = 0;
  const bad = (why: string) => new AsmError('syntax', `bad expression '${text.trim()}': ${why}`, pos);
  const peekOp = (): string | undefined => {
    const t = toks[i];
    return t?.k === 'op' ? t.op : undefined;
  };
  const primary = (): Expr => {
    const t = toks[i++];
    if (t === undefined) throw bad('a value is missing at the end');
    if (t.k === 'num') return { t: 'num', v: t.v };
    if (t.k === 'sym') return { t: 'sym', name: t.name };
    if (t.op === '$') return { t: 'here' };
    if (t.op === '-' || t.op === '+' || t.op === '~') return { t: 'un', op: t.op, e: primary() };
    if (t.op === '(') {
      const e = level(0);
      if (peekOp() !== ')') throw bad("missing ')'");
      i++;
      return e;
    }
    throw bad(`unexpected '${t.op}'`);
  };
  const level = (n: number): Expr => {
    const ops = LEVELS[n];
    if (ops === undefined) return primary();
    let l = level(n + 1);
    for (let op = peekOp(); op !== undefined && ops.includes(op); op = peekOp()) {
      i++;
      l = { t: 'bin', op, l, r: level(n + 1) };
    }
    return l;
  };
  const e = level(0);
  if (i < toks.length) {
    const t = toks[i]!;
    throw bad(`unexpected '${t.k === 'op' ? t.op : t.k === 'sym' ? t.name : t.v.toString()}'`);
  }
  return e;
}

export interface EvalContext {
  /** The value of a symbol; throws when it is undefined. */
  readonly lookup: (name: string) => bigint;
  /** The value of `$`. */
  readonly here: bigint;
  readonly pos: SourcePos;
}

export function evaluate(e: Expr, ctx: EvalContext): bigint {
  switch (e.t) {
    case 'num':
      return e.v;
    case 'sym':
      return ctx.lookup(e.name);
    case 'here':
      return ctx.here;
    case 'un': {
      const v = evaluate(e.e, ctx);
      return e.op === '-' ? -v : e.op === '~' ? ~v : v;
    }
    case 'bin': {
      const l = evaluate(e.l, ctx);
      const r = evaluate(e.r, ctx);
      switch (e.op) {
        case '+':
          return l + r;
        case '-':
          return l - r;
        case '*':
          return l * r;
        case '/':
        case '%':
          if (r === 0n) throw new AsmError('range', 'division by zero', ctx.pos);
          return e.op === '/' ? l / r : l % r;
        case '<<':
        case '>>':
          if (r < 0n || r > 64n)
            throw new AsmError('range', `shift count ${r} out of range (0..64)`, ctx.pos);
          return e.op === '<<' ? l << r : l >> r;
        case '&':
          return l & r;
        case '|':
          return l | r;
        default:
          return l ^ r;
      }
    }
  }
}
