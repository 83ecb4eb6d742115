/**
 * The assembler's front end: splits the source into statements, following `.include` through the
 * injected callback, expanding macros, qualifying local labels (`.name` belongs to the global label
 * above it) and sorting statements into sections. Sections keep their order of first appearance;
 * the assembler lays them out one after another (docs/isa.md, "Sections").
 */
import { INSTRUCTIONS } from '../cpu/isa.js';
import { AsmError, type SourcePos } from './errors.js';
import { IDENT, readQuoted, splitArgs, stripComment } from './lex.js';
import { isReservedName } from './operands.js';

export type Body =
  | { readonly t: 'instr'; readonly mnemonic: string; readonly args: readonly string[] }
  | { readonly t: 'dir'; readonly name: string; readonly args: string }
  | { readonly t: 'equ'; readonly name: string; readonly expr: string };

export interface Stmt {
  readonly pos: SourcePos;
  /** The line as assembled (comment removed, macro arguments substituted). */
  readonly text: string;
  /** Labels defined on this line, local ones qualified (`main.loop`). */
  readonly labels: readonly string[];
  /** The global label in force, for `.local` references. */
  readonly scope: string;
  readonly body: Body | undefined;
}

export interface Section {
  readonly name: string;
  readonly stmts: Stmt[];
}

/** `(path, from)`: the text of the file `path` named in `.include` inside the file `from`. */
export type IncludeFn = (path: string, from: string) => string;

interface Macro {
  readonly params: readonly string[];
  readonly body: string[];
  readonly pos: SourcePos;
}

const MAX_DEPTH = 32;
const MNEMONICS: ReadonlySet<string> = new Set(INSTRUCTIONS.map((d) => d.mnemonic));
const LABEL = /^\s*([A-Za-z_.][A-Za-z0-9_.]*)\s*:(?!:)/;
const SECTION_WORDS: ReadonlySet<string> = new Set(['.section', '.text', '.data']);
/** Handled here, before the assembler sees the statement. */
const PRE_WORDS: ReadonlySet<string> = new Set(['.include', '.macro', '.endm']);

export function readSource(text: string, file: string, include: IncludeFn | undefined): Section[] {
  const sections = new Map<string, Stmt[]>();
  const macros = new Map<string, Macro>();
  let section = '.text';
  let scope = '';
  let unique = 0;
  let collecting: { name: string; macro: Macro } | undefined;

  const push = (stmt: Stmt) => {
    const list = sections.get(section);
    if (list === undefined) sections.set(section, [stmt]);
    else list.push(stmt);
  };

  const includeFile = (args: string, pos: SourcePos, files: readonly string[], depth: number): void => {
    const q = args.startsWith('"') ? readQuoted(args, 0, pos) : undefined;
    if (q === undefined || args.slice(q.end).trim() !== '') {
      throw new AsmError('syntax', '.include needs one quoted file name', pos);
    }
    const path = new TextDecoder().decode(new Uint8Array(q.bytes));
    if (files.includes(path) || depth >= MAX_DEPTH) {
      throw new AsmError('include', `include cycle: ${[...files, path].join(' -> ')}`, pos);
    }
    if (include === undefined) {
      throw new AsmError('include', `cannot include '${path}': no include callback was given`, pos);
    }
    let inner: string;
    try {
      inner = include(path, pos.file);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new AsmError('include', `cannot include '${path}': ${why}`, pos);
    }
    lines(inner, path, [...files, path], depth + 1);
  };

  const defineMacro = (args: string, pos: SourcePos): void => {
    const [name = '', ...params] = args.split(/[\s,]+/).filter((p) => p !== '');
    if (!IDENT.test(name) || name.startsWith('.'))
      throw new AsmError('macro', `bad macro name '${name}'`, pos);
    const bad = params.find((p) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(p));
    if (bad !== undefined) throw new AsmError('macro', `bad macro parameter '${bad}'`, pos);
    if (macros.has(name)) throw new AsmError('macro', `macro '${name}' is already defined`, pos);
    if (MNEMONICS.has(name.toLowerCase())) {
      throw new AsmError('macro', `macro '${name}' would hide an instruction`, pos);
    }
    collecting = { name, macro: { params, body: [], pos } };
  };

  const expand = (
    name: string,
    macro: Macro,
    args: string,
    pos: SourcePos,
    files: readonly string[],
    depth: number,
  ) => {
    const values = splitArgs(args, pos);
    if (values.length !== macro.params.length) {
      const n = macro.params.length;
      throw new AsmError('macro', `macro '${name}' takes ${n} argument(s), got ${values.length}`, pos);
    }
    if (depth >= MAX_DEPTH) throw new AsmError('macro', `macro '${name}' nests too deeply`, pos);
    const id = String(unique++);
    const inner: SourcePos = { file: pos.file, line: pos.line, macro: pos.macro ?? name };
    for (const b of macro.body) {
      // Only this macro's parameters and \@ are replaced: other backslashes (string escapes) stay.
      const expanded = b.replace(/\\(@|[A-Za-z_][A-Za-z0-9_]*)/g, (all, p: string) => {
        if (p === '@') return id;
        const i = macro.params.indexOf(p);
        return i < 0 ? all : values[i]!;
      });
      line(expanded, inner, files, depth + 1);
    }
  };

  const line = (raw: string, pos: SourcePos, files: readonly string[], depth: number): void => {
    const code = stripComment(raw, pos);
    if (collecting !== undefined) {
      const head = /^\s*(\S+)/.exec(code)?.[1]?.toLowerCase();
      if (head === '.macro') throw new AsmError('macro', 'a macro cannot be defined inside another', pos);
      if (head !== '.endm') collecting.macro.body.push(code);
      else {
        macros.set(collecting.name, collecting.macro);
        collecting = undefined;
      }
      return;
    }
    let rest = code;
    const labels: string[] = [];
    for (let m = LABEL.exec(rest); m !== null; m = LABEL.exec(rest)) {
      const name = m[1]!;
      if (isReservedName(name)) throw new AsmError('bad-register', `'${name}' is a register name`, pos);
      if (!name.startsWith('.')) scope = name;
      labels.push(name.startsWith('.') ? scope + name : name);
      rest = rest.slice(m[0].length);
    }
    rest = rest.trim();
    const word = /^\S+/.exec(rest)?.[0] ?? '';
    const args = rest.slice(word.length).trim();
    const lower = word.toLowerCase();
    const stmt = (body: Body | undefined): Stmt => ({ pos, text: code.trim(), labels, scope, body });
    const macro = macros.get(word);
    if (SECTION_WORDS.has(lower)) {
      const name = lower === '.section' ? args : args === '' ? lower : '';
      if (!IDENT.test(name)) throw new AsmError('syntax', `bad section name '${args}'`, pos);
      section = name;
    }
    if (word === '' || SECTION_WORDS.has(lower) || PRE_WORDS.has(lower) || macro !== undefined) {
      if (labels.length > 0) push(stmt(undefined));
    } else if (/^equ$/i.test(/^\S+\s+(\S+)/.exec(rest)?.[1] ?? '')) {
      push(stmt({ t: 'equ', name: word, expr: rest.replace(/^\S+\s+\S+/, '').trim() }));
    } else if (word.startsWith('.')) {
      push(stmt({ t: 'dir', name: lower, args }));
    } else {
      push(stmt({ t: 'instr', mnemonic: lower, args: splitArgs(args, pos) }));
    }
    if (lower === '.include') includeFile(args, pos, files, depth);
    else if (lower === '.macro') defineMacro(args, pos);
    else if (lower === '.endm') throw new AsmError('macro', "'.endm' without '.macro'", pos);
    else if (macro !== undefined) expand(word, macro, args, pos, files, depth);
  };

  const lines = (src: string, name: string, files: readonly string[], depth: number): void => {
    src.split(/\r?\n/).forEach((raw, i) => {
      line(raw, { file: name, line: i + 1 }, files, depth);
    });
  };

  lines(text, file, [file], 0);
  if (collecting !== undefined) {
    throw new AsmError('macro', `macro '${collecting.name}' has no '.endm'`, collecting.macro.pos);
  }
  return [...sections].map(([name, stmts]) => ({ name, stmts }));
}
