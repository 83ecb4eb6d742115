/**
 * Operand syntax: `eax`..`edi`, `es cs ss ds fs gs`, `cr0`..`cr4`; memory `[base]`, `[base+disp]`,
 * `[base-disp]`, `[disp]`, each with an optional segment `[fs:...]`; a far pointer `sel:offset`;
 * anything else is an expression (imm, imm16, vec or port). Names are case-insensitive.
 */
import { CR_NAMES, NO_BASE, NO_SEG, type OperandKind, REG_NAMES, SREG_NAMES } from '../cpu/isa.js';
import { AsmError, type SourcePos } from './errors.js';
import { type Expr, parseExpr } from './expr.js';
import { indexTopLevel } from './lex.js';

export type Operand =
  | { readonly k: 'reg' | 'sreg' | 'cr'; readonly n: number }
  | { readonly k: 'mem'; readonly base: number; readonly seg: number; readonly disp: Expr }
  | { readonly k: 'far'; readonly sel: Expr; readonly off: Expr }
  | { readonly k: 'imm'; readonly e: Expr };

/** x86 names that are not registers here: a clear error rather than "undefined symbol". */
const NOT_HERE = /^(?:cr\d+|dr\d+|[abcd][xlh]|[sd]il?|[sb]pl?|r[abcd]x|r[sd]i|r[sb]p|r\d+)$/;

/** The register named `name` (any case), `undefined` when it names none. */
export function registerOf(name: string): { k: 'reg' | 'sreg' | 'cr'; n: number } | undefined {
  const low = name.toLowerCase();
  const tables = [
    ['reg', REG_NAMES],
    ['sreg', SREG_NAMES],
    ['cr', CR_NAMES],
  ] as const;
  for (const [k, names] of tables) {
    const n = (names as readonly string[]).indexOf(low);
    if (n >= 0) return { k, n };
  }
  return undefined;
}

/** True for register names and the x86 register names this machine does not have. */
export function isReservedName(name: string): boolean {
  return registerOf(name) !== undefined || NOT_HERE.test(name.toLowerCase());
}

function badRegister(name: string, pos: SourcePos): AsmError {
  return new AsmError(
    'bad-register',
    `bad register '${name}' (registers: ${REG_NAMES.join(' ')}; ${SREG_NAMES.join(' ')}; ${CR_NAMES.join(' ')})`,
    pos,
  );
}

function parseMem(text: string, pos: SourcePos): Operand {
  let inner = text.slice(1, -1).trim();
  let seg = NO_SEG;
  const colon = indexTopLevel(inner, ':', pos);
  if (colon >= 0) {
    const name = inner.slice(0, colon).trim();
    const r = registerOf(name);
    if (r?.k !== 'sreg') {
      throw new AsmError(
        'bad-register',
        `'${name}' is not a segment register (${SREG_NAMES.join(' ')})`,
        pos,
      );
    }
    seg = r.n;
    inner = inner.slice(colon + 1).trim();
  }
  if (inner === '')
    throw new AsmError('syntax', `bad memory operand '${text}': no base or displacement`, pos);
  const head = /^[A-Za-z_.][A-Za-z0-9_.]*/.exec(inner)?.[0] ?? '';
  const r = registerOf(head);
  if (r === undefined) {
    if (NOT_HERE.test(head.toLowerCase())) throw badRegister(head, pos);
    return { k: 'mem', base: NO_BASE, seg, disp: parseExpr(inner, pos) };
  }
  if (r.k !== 'reg') throw new AsmError('bad-register', `'${head}' cannot be a base register`, pos);
  const rest = inner.slice(head.length).trim();
  if (rest !== '' && rest[0] !== '+' && rest[0] !== '-') {
    throw new AsmError(
      'syntax',
      `bad memory operand '${text}': expected + or - after the base register`,
      pos,
    );
  }
  return { k: 'mem', base: r.n, seg, disp: parseExpr(rest === '' ? '0' : rest, pos) };
}

export function parseOperand(text: string, pos: SourcePos): Operand {
  const r = registerOf(text);
  if (r !== undefined) return r;
  if (NOT_HERE.test(text.toLowerCase())) throw badRegister(text, pos);
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) throw new AsmError('syntax', `bad memory operand '${text}': missing ']'`, pos);
    return parseMem(text, pos);
  }
  const colon = indexTopLevel(text, ':', pos);
  if (colon >= 0) {
    return {
      k: 'far',
      sel: parseExpr(text.slice(0, colon), pos),
      off: parseExpr(text.slice(colon + 1), pos),
    };
  }
  return { k: 'imm', e: parseExpr(text, pos) };
}

/** Whether an operand written like `op` can stand where the table says `kind`. */
export function fits(kind: OperandKind, op: Operand): boolean {
  return op.k === 'imm'
    ? kind === 'imm' || kind === 'imm16' || kind === 'vec' || kind === 'port'
    : op.k === kind;
}
