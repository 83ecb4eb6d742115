/**
 * Lexical helpers shared by the assembler's front end, operands and expressions: quoted text with
 * escapes, comments, and splitting at separators that are not inside quotes, brackets or parentheses.
 */
import { AsmError, type SourcePos } from './errors.js';

const ESCAPES: Readonly<Record<string, number>> = { n: 10, t: 9, r: 13, '0': 0, '\\': 92, '"': 34, "'": 39 };
const utf8 = new TextEncoder();

/**
 * Reads the quoted text that starts at `text[start]` (a `"` or `'`). Returns its bytes (UTF-8,
 * escapes `\n \t \r \0 \\ \" \' \xNN` resolved) and the index just after the closing quote.
 */
export function readQuoted(text: string, start: number, pos: SourcePos): { bytes: number[]; end: number } {
  const quote = text[start];
  const bytes: number[] = [];
  let i = start + 1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === quote) return { bytes, end: i + 1 };
    if (c === '\\') {
      const e = text[i + 1];
      if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
        bytes.push(Number.parseInt(text.slice(i + 2, i + 4), 16));
        i += 4;
        continue;
      }
      const v = e === undefined ? undefined : ESCAPES[e];
      if (v === undefined) throw new AsmError('syntax', `unknown escape '\\${e ?? ''}'`, pos);
      bytes.push(v);
      i += 2;
      continue;
    }
    const cp = text.codePointAt(i)!;
    const s = String.fromCodePoint(cp);
    for (const b of utf8.encode(s)) bytes.push(b);
    i += s.length;
  }
  throw new AsmError('syntax', `unterminated ${quote === '"' ? 'string' : 'character literal'}`, pos);
}

/** Index of the first `ch` that is not inside quotes, brackets or parentheses, or -1. */
export function indexTopLevel(text: string, ch: string, pos: SourcePos): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'") {
      i = readQuoted(text, i, pos).end - 1;
    } else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === ch && depth === 0) return i;
  }
  return -1;
}

/** Splits at top-level commas; an empty text gives no parts. Parts are trimmed. */
export function splitArgs(text: string, pos: SourcePos): string[] {
  const parts: string[] = [];
  let rest = text.trim();
  if (rest === '') return parts;
  for (;;) {
    const at = indexTopLevel(rest, ',', pos);
    if (at < 0) break;
    parts.push(rest.slice(0, at).trim());
    rest = rest.slice(at + 1);
  }
  parts.push(rest.trim());
  if (parts.some((p) => p === '')) throw new AsmError('syntax', 'empty operand', pos);
  return parts;
}

/** The line without its comment (`;` or `#` outside quotes), right-trimmed. */
export function stripComment(text: string, pos: SourcePos): string {
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'") i = readQuoted(text, i, pos).end - 1;
    else if (c === ';' || c === '#') return text.slice(0, i).trimEnd();
  }
  return text.trimEnd();
}

export const IDENT = /^[A-Za-z_.][A-Za-z0-9_.]*$/;
