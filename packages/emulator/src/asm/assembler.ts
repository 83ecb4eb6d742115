/**
 * The two-pass assembler. Pass 1 walks the statements in layout order (sections one after
 * another), gives every label its address and sizes every statement (every instruction is 8 bytes,
 * so only .org, .align and .space need values then); pass 2 evaluates operands with every symbol
 * known and writes the bytes. Syntax and layout are documented in docs/isa.md.
 */
import { INSTR_BYTES, INSTRUCTIONS, type InstrDef } from '../cpu/isa.js';
import { type Fields, pack, slotsOf } from './encoding.js';
import { AsmError, hex, type SourcePos } from './errors.js';
import { type Expr, evaluate, parseExpr } from './expr.js';
import { IDENT, readQuoted, splitArgs } from './lex.js';
import { fits, isReservedName, type Operand, parseOperand } from './operands.js';
import { type IncludeFn, readSource, type Stmt } from './source.js';

export interface AssembleOptions {
  /** Address of the first output byte. Default: where `.org` lines before any label or byte point, else 0. */
  readonly origin?: number;
  /** Reads `.include "path"`; `from` is the file that includes it. Without it `.include` is an error. */
  readonly include?: IncludeFn;
  /** Constants defined before the first line (like `-D NAME=value`). */
  readonly defines?: Readonly<Record<string, number>>;
  /** The source's name in errors and in the source map (default `<source>`). */
  readonly file?: string;
}

export interface SectionInfo {
  readonly name: string;
  /** Address of the section's first label or content byte (padding of .org and .align not counted). */
  readonly start: number;
  /** Address just past its last byte. */
  readonly end: number;
}

/** Source map entry: the statement at `file:line` produced `size` bytes at `address`. */
export interface LineInfo {
  readonly address: number;
  readonly size: number;
  readonly file: string;
  readonly line: number;
  readonly text: string;
}

export interface AsmResult {
  /** The image from `origin` to the last byte, gaps filled with zeros. */
  readonly bytes: Uint8Array;
  readonly origin: number;
  /** Every label, local ones as `global.local`. */
  readonly labels: Map<string, number>;
  /** Every `equ` constant and define. */
  readonly constants: Map<string, number>;
  readonly sections: readonly SectionInfo[];
  readonly lines: readonly LineInfo[];
}

/** The largest output the assembler builds (a guard against `.org 0xffff0000` by mistake). */
export const MAX_OUTPUT = 64 * 1024 * 1024;
const ADDRESS_SPACE = 2 ** 32;

const BY_MNEMONIC = new Map<string, InstrDef[]>();
for (const d of INSTRUCTIONS) BY_MNEMONIC.set(d.mnemonic, [...(BY_MNEMONIC.get(d.mnemonic) ?? []), d]);

type Sym =
  | { readonly kind: 'label' | 'define'; readonly value: bigint; readonly pos: SourcePos }
  | {
      readonly kind: 'equ';
      readonly expr: Expr;
      readonly scope: string;
      readonly here: bigint;
      readonly pos: SourcePos;
      value?: bigint;
      busy: boolean;
    };

type Emit = (out: Uint8Array, at: number) => void;
type Eval = (e: Expr) => bigint;

/** Checks that `v` lies in lo..hi and returns its low 32 bits as an unsigned number. */
function fit(v: bigint, lo: bigint, hi: bigint, what: string, pos: SourcePos): number {
  if (v < lo || v > hi)
    throw new AsmError('range', `${what} ${hex(v)} out of range (${hex(lo)}..${hex(hi)})`, pos);
  return Number(BigInt.asUintN(32, v));
}
const S32: readonly [bigint, bigint] = [-0x80000000n, 0xffffffffn];
const DATA: Readonly<Record<string, { size: number; lo: bigint; hi: bigint }>> = {
  '.byte': { size: 1, lo: -0x80n, hi: 0xffn },
  '.word': { size: 2, lo: -0x8000n, hi: 0xffffn },
  '.dword': { size: 4, lo: S32[0], hi: S32[1] },
};
const IMM_RANGE: Readonly<Record<string, readonly [bigint, bigint, string]>> = {
  imm: [S32[0], S32[1], 'immediate'],
  imm16: [0n, 0xffffn, 'imm16'],
  vec: [0n, 0xffn, 'vector'],
  port: [0n, 0xffffn, 'port'],
};

/** The bytes of a list of quoted strings (`"a", "b"`), each followed by `term` bytes. */
function strings(args: string, pos: SourcePos, term: number[]): number[] {
  const out: number[] = [];
  for (const a of splitArgs(args, pos)) {
    const q = a.startsWith('"') ? readQuoted(a, 0, pos) : undefined;
    if (q === undefined || q.end !== a.length)
      throw new AsmError('syntax', `expected a quoted string, got '${a}'`, pos);
    out.push(...q.bytes, ...term);
  }
  if (out.length === 0) throw new AsmError('syntax', 'expected a quoted string', pos);
  return out;
}

export function assemble(source: string, opts: AssembleOptions = {}): AsmResult {
  const file = opts.file ?? '<source>';
  const syms = new Map<string, Sym>();
  let pass1 = true;

  const lookup = (name: string, scope: string, pos: SourcePos): bigint => {
    if (isReservedName(name))
      throw new AsmError('bad-register', `register '${name}' cannot be used as a value`, pos);
    const full = name.startsWith('.') ? scope + name : name;
    const s = syms.get(full);
    if (s === undefined) {
      const hint = pass1 ? ' (.org, .align and .space need symbols defined above them)' : '';
      throw new AsmError('undefined-symbol', `undefined symbol '${full}'${hint}`, pos);
    }
    if (s.kind !== 'equ') return s.value;
    if (s.value !== undefined) return s.value;
    if (s.busy)
      throw new AsmError('undefined-symbol', `constant '${full}' is defined in terms of itself`, s.pos);
    s.busy = true;
    try {
      s.value = evaluate(s.expr, { lookup: (n) => lookup(n, s.scope, s.pos), here: s.here, pos: s.pos });
      return s.value;
    } finally {
      s.busy = false;
    }
  };
  const define = (name: string, sym: Sym): void => {
    if (isReservedName(name)) throw new AsmError('bad-register', `'${name}' is a register name`, sym.pos);
    const old = syms.get(name);
    if (old !== undefined) {
      const what = sym.kind === 'label' ? 'label' : 'symbol';
      const at =
        old.pos.line > 0 ? ` (first defined at ${old.pos.file}:${old.pos.line})` : ' (given in defines)';
      throw new AsmError('duplicate-symbol', `duplicate ${what} '${name}'${at}`, sym.pos);
    }
    syms.set(name, sym);
  };

  const optPos: SourcePos = { file, line: 0 };
  if (
    opts.origin !== undefined &&
    !(Number.isInteger(opts.origin) && opts.origin >= 0 && opts.origin < ADDRESS_SPACE)
  ) {
    throw new AsmError('layout', `origin ${opts.origin} is not an address (0..0xffffffff)`, optPos);
  }
  for (const [name, value] of Object.entries(opts.defines ?? {})) {
    if (!IDENT.test(name) || name.startsWith('.'))
      throw new AsmError('syntax', `bad define name '${name}'`, optPos);
    if (!Number.isSafeInteger(value))
      throw new AsmError('range', `define '${name}' = ${value} is not an integer`, optPos);
    define(name, { kind: 'define', value: BigInt(value), pos: optPos });
  }

  const sections = readSource(source, file, opts.include);

  // Pass 1: addresses and sizes.
  let origin = opts.origin;
  let loc = origin ?? 0;
  const plan: { stmt: Stmt; address: number; size: number; mapped: boolean; emit?: Emit }[] = [];
  const sectionInfo: SectionInfo[] = [];
  for (const section of sections) {
    let start: number | undefined;
    for (const stmt of section.stmts) {
      const pos = stmt.pos;
      const address = loc;
      const ev: Eval = (e) =>
        evaluate(e, { lookup: (n) => lookup(n, stmt.scope, pos), here: BigInt(address), pos });
      if (stmt.labels.length > 0) origin ??= loc;
      for (const l of stmt.labels) define(l, { kind: 'label', value: BigInt(loc), pos });
      const body = stmt.body;
      let planned: Planned = { size: 0, mapped: false };
      if (body?.t === 'equ' || (body?.t === 'dir' && body.name === '.equ')) {
        const parts = body.t === 'equ' ? [body.name, body.expr] : splitArgs(body.args, pos);
        const [name = '', expr = ''] = parts;
        if (parts.length !== 2 || expr === '' || !IDENT.test(name) || name.startsWith('.')) {
          throw new AsmError('syntax', 'expected NAME equ expr or .equ NAME, expr', pos);
        }
        const e = parseExpr(expr, pos);
        define(name, { kind: 'equ', expr: e, scope: stmt.scope, here: BigInt(loc), pos, busy: false });
      } else if (body?.t === 'instr') {
        planned = planInstruction(body.mnemonic, body.args, pos, ev);
      } else if (body?.t === 'dir') {
        planned =
          planData(body.name, body.args, pos, ev) ??
          planLayout(body.name, body.args, pos, ev, loc, origin) ??
          fail(new AsmError('unknown-directive', `unknown directive '${body.name}'`, pos));
      }
      if (planned.moveTo !== undefined) loc = planned.moveTo;
      const { size, emit, mapped } = planned;
      if (size > 0) origin ??= address;
      loc += size;
      if (loc > ADDRESS_SPACE) {
        throw new AsmError('layout', `address ${hex(loc)} is past the end of the address space`, pos);
      }
      if (origin !== undefined && loc - origin > MAX_OUTPUT) {
        throw new AsmError(
          'layout',
          `the output would be ${hex(loc - origin)} bytes, more than ${hex(MAX_OUTPUT)}`,
          pos,
        );
      }
      if (stmt.labels.length > 0 || mapped) start ??= address;
      plan.push({ stmt, address, size, mapped, ...(emit ? { emit } : {}) });
    }
    sectionInfo.push({ name: section.name, start: start ?? loc, end: loc });
  }
  origin ??= loc;

  // Pass 2: every symbol is known.
  pass1 = false;
  const constants = new Map<string, number>();
  const labels = new Map<string, number>();
  for (const [name, s] of syms) {
    if (s.kind === 'label') labels.set(name, Number(s.value));
    else constants.set(name, Number(lookup(name, '', s.pos)));
  }
  const bytes = new Uint8Array(loc - origin);
  const lines: LineInfo[] = [];
  for (const p of plan) {
    p.emit?.(bytes, p.address - origin);
    const { file: f, line } = p.stmt.pos;
    if (p.mapped) lines.push({ address: p.address, size: p.size, file: f, line, text: p.stmt.text });
  }
  return { bytes, origin, labels, constants, sections: sectionInfo, lines };
}

interface Planned {
  readonly size: number;
  readonly emit?: Emit;
  /** Whether the statement gets a source-map entry (instructions and data, not padding). */
  readonly mapped: boolean;
  /** `.org` before the origin is known: move there without padding. */
  readonly moveTo?: number;
}

const fail = (e: AsmError): never => {
  throw e;
};

function planInstruction(mnemonic: string, args: readonly string[], pos: SourcePos, ev: Eval): Planned {
  const defs = BY_MNEMONIC.get(mnemonic);
  if (defs === undefined) throw new AsmError('unknown-mnemonic', `unknown mnemonic '${mnemonic}'`, pos);
  const ops = args.map((a) => parseOperand(a, pos));
  const def = defs.find(
    (d) => d.operands.length === ops.length && d.operands.every((k, i) => fits(k, ops[i]!)),
  );
  if (def === undefined) {
    const got = ops.map((o) => o.k).join(', ') || 'none';
    const forms = defs.map((d) => d.operands.join(',') || 'none').join('; ');
    throw new AsmError(
      'operand-mismatch',
      `operands (${got}) do not fit '${mnemonic}' (forms: ${forms})`,
      pos,
    );
  }
  return {
    size: INSTR_BYTES,
    mapped: true,
    emit: (out, at) => pack(out, at, def, fields(def, ops, ev, pos)),
  };
}

/** .byte .word .dword .ascii .asciz, or undefined for another directive. */
function planData(name: string, args: string, pos: SourcePos, ev: Eval): Planned | undefined {
  if (name === '.ascii' || name === '.asciz') {
    const bytes = strings(args, pos, name === '.asciz' ? [0] : []);
    return { size: bytes.length, mapped: true, emit: (out, at) => out.set(bytes, at) };
  }
  const data = DATA[name];
  if (data === undefined) return undefined;
  const items = splitArgs(args, pos).map((a) =>
    a.startsWith('"') && data.size === 1 ? strings(a, pos, []) : parseExpr(a, pos),
  );
  if (items.length === 0) throw new AsmError('syntax', `${name} needs at least one value`, pos);
  const emit: Emit = (out, at) => {
    for (const it of items) {
      if (Array.isArray(it)) {
        out.set(it, at);
        at += it.length;
        continue;
      }
      const v = fit(ev(it), data.lo, data.hi, name.slice(1), pos);
      for (let i = 0; i < data.size; i++) out[at++] = (v >>> (8 * i)) & 0xff;
    }
  };
  return {
    size: items.reduce((n, it) => n + (Array.isArray(it) ? it.length : data.size), 0),
    mapped: true,
    emit,
  };
}

/** .org .align .space (their sizes are needed in pass 1), or undefined for another directive. */
function planLayout(
  name: string,
  args: string,
  pos: SourcePos,
  ev: Eval,
  loc: number,
  origin: number | undefined,
): Planned | undefined {
  if (name === '.org') {
    const [a, ...extra] = splitArgs(args, pos);
    if (a === undefined || extra.length > 0) throw new AsmError('syntax', '.org needs one address', pos);
    const target = fit(ev(parseExpr(a, pos)), 0n, S32[1], 'address', pos);
    if (origin === undefined) return { size: 0, mapped: false, moveTo: target };
    if (target < origin)
      throw new AsmError('layout', `.org ${hex(target)} is below the origin ${hex(origin)}`, pos);
    if (target < loc) {
      throw new AsmError('layout', `.org ${hex(target)} moves backwards (already at ${hex(loc)})`, pos);
    }
    return { size: target - loc, mapped: false };
  }
  if (name !== '.align' && name !== '.space') return undefined;
  const [n, fill = '0', ...extra] = splitArgs(args, pos);
  if (n === undefined || extra.length > 0)
    throw new AsmError('syntax', `${name} needs a size and an optional fill`, pos);
  const count = ev(parseExpr(n, pos));
  let size: number;
  if (name === '.align') {
    const to = fit(count, 1n, 0x10000n, 'alignment', pos);
    size = (to - (loc % to)) % to;
  } else size = fit(count, 0n, BigInt(MAX_OUTPUT), 'size', pos);
  const fillExpr = parseExpr(fill, pos);
  const emit: Emit = (out, at) =>
    out.fill(fit(ev(fillExpr), -0x80n, 0xffn, 'fill byte', pos) & 0xff, at, at + size);
  return { size, mapped: name === '.space', emit };
}

function fields(def: InstrDef, ops: readonly Operand[], ev: Eval, pos: SourcePos): Fields {
  const f: Fields = { a: 0, b: 0, seg: 0, sel: 0, imm: 0 };
  const slots = slotsOf(def);
  ops.forEach((op, i) => {
    const slot = slots[i];
    if (op.k === 'imm') {
      const [lo, hi, what] = IMM_RANGE[def.operands[i]!]!;
      f.imm = fit(ev(op.e), lo, hi, what, pos);
    } else if (op.k === 'mem') {
      f.b = op.base;
      f.seg = op.seg;
      f.imm = fit(ev(op.disp), S32[0], S32[1], 'displacement', pos);
    } else if (op.k === 'far') {
      f.sel = fit(ev(op.sel), 0n, 0xffffn, 'selector', pos);
      f.imm = fit(ev(op.off), S32[0], S32[1], 'offset', pos);
    } else if (slot === 'a') {
      f.a = op.n;
    } else {
      f.b = op.n;
    }
  });
  return f;
}
