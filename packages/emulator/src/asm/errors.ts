/**
 * Assembler errors. Assembling is a host operation (the source is input to a tool, not guest
 * state), so a bad source throws: an {@link AsmError}, which is a `ClefnetError` with the host-error
 * code `CONFIG_INVALID` (docs/errors.md) and says where and what in `kind`, `file` and `line`.
 */
import { ClefnetError } from '@clefnet/protocol';

export type AsmErrorKind =
  /** a line, operand, string or expression that does not parse */
  | 'syntax'
  | 'unknown-mnemonic'
  | 'unknown-directive'
  /** the mnemonic exists but no form of it takes these operand kinds */
  | 'operand-mismatch'
  /** a register name where it cannot stand, or a register that does not exist (cr5) */
  | 'bad-register'
  | 'undefined-symbol'
  | 'duplicate-symbol'
  /** a value that does not fit its field (selector > 0xffff, vector > 0xff, ...) */
  | 'range'
  /** .org backwards, an image too large, a bad origin */
  | 'layout'
  | 'include'
  | 'macro';

/** Where a statement came from; `macro` names the macro whose expansion produced it. */
export interface SourcePos {
  readonly file: string;
  readonly line: number;
  readonly macro?: string;
}

export class AsmError extends ClefnetError {
  readonly kind: AsmErrorKind;
  readonly file: string;
  /** 1-based; 0 when the error is about the whole source (options). */
  readonly line: number;
  /** The message without the `file:line: ` prefix. */
  readonly detail: string;

  constructor(kind: AsmErrorKind, detail: string, pos: SourcePos) {
    const where = pos.line > 0 ? `${pos.file}:${pos.line}` : pos.file;
    const inMacro = pos.macro === undefined ? '' : ` (in macro '${pos.macro}')`;
    super('CONFIG_INVALID', `${where}: ${detail}${inMacro}`, { kind, file: pos.file, line: pos.line });
    this.name = 'AsmError';
    this.kind = kind;
    this.file = pos.file;
    this.line = pos.line;
    this.detail = detail;
  }
}

/** Hex for messages and listings: `0x1f`, `-0x10`. */
export function hex(v: bigint | number): string {
  const n = BigInt(v);
  return n < 0n ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`;
}
