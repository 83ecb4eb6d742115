/**
 * The instruction set: ONE table that drives the decoder, the disassembler, the assembler,
 * docs/isa.md and the generated tests (issue 3). The encoding is the project's own, fixed width:
 * every instruction is 8 bytes, little-endian:
 *
 * | byte | field | use                                                                     |
 * |------|-------|-------------------------------------------------------------------------|
 * | 0    | op    | opcode (0x00 is invalid: executing zeroed memory raises #UD)            |
 * | 1    | a / b | low nibble A = first register operand, high nibble B = second / base    |
 * | 2    | c     | memory operands: segment override (0-5 = ES CS SS DS FS GS, 0xF = none) |
 * | 2-3  | sel   | far pointers: the 16-bit selector                                       |
 * | 4-7  | imm   | immediate, displacement, absolute target, vector or port                |
 *
 * Operand placement, the one rule the assembler and decoder share: register-like operands (reg,
 * sreg, cr) take A, then B, in order of appearance; a memory operand takes B (base register, 8 =
 * none), byte 2 (segment) and imm (displacement); imm, imm16, vec and port take imm; far takes sel
 * and imm. Decoding is strict: a field no operand uses must be 0 and every used field must be in
 * range, else the instruction raises #UD (MBZ, MEM_SEGMENT and encodingError below).
 */

export type OperandKind = 'reg' | 'sreg' | 'cr' | 'imm' | 'imm16' | 'mem' | 'far' | 'vec' | 'port';

/** Who may execute it (SDM §5.9, reference §3.6). */
export type Privilege =
  /** any CPL */
  | 'any'
  /** CPL 0 only, else #GP(0) */
  | 'cpl0'
  /** CPL <= IOPL (CLI/STI; IN/OUT also consult the TSS I/O permission bitmap), else #GP(0) */
  | 'iopl';

export interface InstrDef {
  readonly op: number;
  readonly mnemonic: string;
  readonly operands: readonly OperandKind[];
  readonly privilege: Privilege;
  readonly group: 'misc' | 'data' | 'alu' | 'branch' | 'far' | 'segment' | 'system' | 'io';
  /** One line for docs/isa.md and the disassembler's help. */
  readonly summary: string;
  /** Sensitive but unprivileged (reference §3.6): leaks real state under ring compression. */
  readonly sensitive?: true;
}

const d = (
  op: number,
  mnemonic: string,
  operands: readonly OperandKind[],
  group: InstrDef['group'],
  summary: string,
  privilege: Privilege = 'any',
  sensitive?: true,
): InstrDef => ({ op, mnemonic, operands, group, summary, privilege, ...(sensitive ? { sensitive } : {}) });

const ALU = [
  'add',
  'sub',
  'and',
  'or',
  'xor',
  'cmp',
  'test',
  'shl',
  'shr',
  'sar',
  'mul',
  'divu',
  'remu',
] as const;
const ALU_TEXT: Record<(typeof ALU)[number], string> = {
  add: 'a += b; CF ZF SF OF',
  sub: 'a -= b; CF ZF SF OF',
  and: 'a &= b; ZF SF, CF = OF = 0',
  or: 'a |= b; ZF SF, CF = OF = 0',
  xor: 'a ^= b; ZF SF, CF = OF = 0',
  cmp: 'flags of a - b; a unchanged',
  test: 'flags of a & b; a unchanged',
  shl: 'a <<= (b & 31); CF = last bit out, ZF SF, OF = 0; a count of 0 changes no flag',
  shr: 'a >>>= (b & 31); CF = last bit out, ZF SF, OF = 0; a count of 0 changes no flag',
  sar: 'a >>= (b & 31) (arithmetic); CF = last bit out, ZF SF, OF = 0; a count of 0 changes no flag',
  mul: 'a = low 32 bits of a * b (unsigned); CF = OF = high half != 0, ZF SF',
  divu: 'a = a / b (unsigned); #DE when b = 0; flags unchanged',
  remu: 'a = a % b (unsigned); #DE when b = 0; flags unchanged',
};
/** The conditional jumps, in opcode order from 0x58. */
export const JCC = [
  'jz',
  'jnz',
  'jc',
  'jnc',
  'js',
  'jns',
  'jo',
  'jno',
  'jl',
  'jge',
  'jle',
  'jg',
  'jbe',
  'ja',
] as const;
const JCC_TEXT: Record<(typeof JCC)[number], string> = {
  jz: 'ZF = 1',
  jnz: 'ZF = 0',
  jc: 'CF = 1 (below)',
  jnc: 'CF = 0 (above or equal)',
  js: 'SF = 1',
  jns: 'SF = 0',
  jo: 'OF = 1',
  jno: 'OF = 0',
  jl: 'SF != OF',
  jge: 'SF = OF',
  jle: 'ZF = 1 or SF != OF',
  jg: 'ZF = 0 and SF = OF',
  jbe: 'CF = 1 or ZF = 1',
  ja: 'CF = 0 and ZF = 0',
};

export const INSTRUCTIONS: readonly InstrDef[] = [
  d(0x01, 'nop', [], 'misc', 'no operation'),
  d(0x02, 'hlt', [], 'system', 'halt until an interrupt', 'cpl0'),
  d(0x10, 'mov', ['reg', 'reg'], 'data', 'a = b'),
  d(0x11, 'mov', ['reg', 'imm'], 'data', 'a = imm'),
  d(0x12, 'ld', ['reg', 'mem'], 'data', 'a = dword at mem'),
  d(0x13, 'st', ['mem', 'reg'], 'data', 'dword at mem = a'),
  d(0x14, 'ldb', ['reg', 'mem'], 'data', 'a = byte at mem, zero-extended'),
  d(0x15, 'stb', ['mem', 'reg'], 'data', 'byte at mem = low byte of a'),
  d(0x16, 'lea', ['reg', 'mem'], 'data', 'a = offset of mem (no access)'),
  d(0x17, 'push', ['reg'], 'data', 'push a on SS:ESP'),
  d(0x18, 'push', ['imm'], 'data', 'push imm on SS:ESP'),
  d(0x19, 'pop', ['reg'], 'data', 'pop into a'),
  ...ALU.map((m, i) => d(0x20 + i, m, ['reg', 'reg'], 'alu', ALU_TEXT[m])),
  ...ALU.map((m, i) => d(0x30 + i, m, ['reg', 'imm'], 'alu', ALU_TEXT[m])),
  d(0x40, 'neg', ['reg'], 'alu', 'a = -a; CF = a != 0, ZF SF OF (as 0 - a)'),
  d(0x41, 'not', ['reg'], 'alu', 'a = ~a; flags unchanged'),
  d(0x42, 'inc', ['reg'], 'alu', 'a += 1; ZF SF OF, CF unchanged'),
  d(0x43, 'dec', ['reg'], 'alu', 'a -= 1; ZF SF OF, CF unchanged'),
  d(0x50, 'jmp', ['imm'], 'branch', 'EIP = imm (near)'),
  d(0x51, 'jmp', ['reg'], 'branch', 'EIP = a (near)'),
  d(0x52, 'call', ['imm'], 'branch', 'push EIP of the next instruction; EIP = imm'),
  d(0x53, 'call', ['reg'], 'branch', 'push EIP of the next instruction; EIP = a'),
  d(0x54, 'ret', [], 'branch', 'pop EIP (near)'),
  d(0x55, 'ret', ['imm16'], 'branch', 'pop EIP; ESP += imm'),
  ...JCC.map((m, i) => d(0x58 + i, m, ['imm'], 'branch', `EIP = imm if ${JCC_TEXT[m]}`)),
  d(0x70, 'jmpf', ['far'], 'far', 'far jump: code segment or call gate (reference §3.2, §3.3)'),
  d(0x71, 'callf', ['far'], 'far', 'far call: code segment or call gate, stack switch inward (§3.3)'),
  d(0x72, 'retf', [], 'far', 'far return, to an outer ring if the return CS RPL > CPL (§3.4)'),
  d(0x73, 'retf', ['imm16'], 'far', 'far return, then release imm bytes of parameters'),
  d(0x74, 'iret', [], 'far', 'return from interrupt (§3.4)'),
  d(0x75, 'int', ['vec'], 'far', 'software interrupt through the IDT; gate DPL checked (§3.5)'),
  d(0x76, 'int3', [], 'far', 'breakpoint trap, vector 3; gate DPL checked'),
  d(
    0x80,
    'mov',
    ['sreg', 'reg'],
    'segment',
    'load a segment register (§3.1); SS rules for SS; CS not allowed',
  ),
  d(0x81, 'mov', ['reg', 'sreg'], 'segment', 'a = selector, RPL included', 'any', true),
  d(0x82, 'push', ['sreg'], 'segment', 'push the selector', 'any', true),
  d(0x83, 'pop', ['sreg'], 'segment', 'pop and load a segment register (§3.1)'),
  d(
    0x84,
    'lar',
    ['reg', 'reg'],
    'segment',
    'a = access rights of selector b, ZF = 1 if visible',
    'any',
    true,
  ),
  d(0x85, 'lsl', ['reg', 'reg'], 'segment', 'a = byte limit of selector b, ZF = 1 if visible', 'any', true),
  d(0x86, 'verr', ['reg'], 'segment', 'ZF = 1 if selector a is readable at CPL', 'any', true),
  d(0x87, 'verw', ['reg'], 'segment', 'ZF = 1 if selector a is writable at CPL', 'any', true),
  d(0x90, 'lgdt', ['mem'], 'system', 'GDTR = {limit: word, base: dword} at mem', 'cpl0'),
  d(0x91, 'lidt', ['mem'], 'system', 'IDTR = {limit, base} at mem', 'cpl0'),
  d(0x92, 'sgdt', ['mem'], 'system', 'store GDTR at mem', 'any', true),
  d(0x93, 'sidt', ['mem'], 'system', 'store IDTR at mem', 'any', true),
  d(0x94, 'lldt', ['reg'], 'system', 'LDTR = selector a (an LDT descriptor in the GDT, or null)', 'cpl0'),
  d(0x95, 'sldt', ['reg'], 'system', 'a = LDTR selector', 'any', true),
  d(0x96, 'ltr', ['reg'], 'system', 'TR = selector a (an available TSS in the GDT; marked busy)', 'cpl0'),
  d(0x97, 'str', ['reg'], 'system', 'a = TR selector', 'any', true),
  d(0x98, 'mov', ['cr', 'reg'], 'system', 'CRn = b (CR3 write flushes the TLB)', 'cpl0'),
  d(0x99, 'mov', ['reg', 'cr'], 'system', 'a = CRn', 'cpl0'),
  d(0x9a, 'smsw', ['reg'], 'system', 'a = low 16 bits of CR0', 'any', true),
  d(0x9b, 'invlpg', ['mem'], 'system', 'drop the TLB entry of the page of mem', 'cpl0'),
  d(0x9c, 'clts', [], 'system', 'CR0.TS = 0', 'cpl0'),
  d(0xa0, 'cli', [], 'io', 'IF = 0', 'iopl'),
  d(0xa1, 'sti', [], 'io', 'IF = 1 (interrupts taken after the next instruction)', 'iopl'),
  d(0xa2, 'pushf', [], 'io', 'push EFLAGS (real IF and IOPL visible)', 'any', true),
  d(
    0xa3,
    'popf',
    [],
    'io',
    'pop EFLAGS; IOPL only at CPL 0, IF only at CPL <= IOPL, else silently kept',
    'any',
    true,
  ),
  d(0xa4, 'in', ['reg', 'port'], 'io', 'a = dword from port imm', 'iopl'),
  d(0xa5, 'in', ['reg', 'reg'], 'io', 'a = dword from the port in b', 'iopl'),
  d(0xa6, 'out', ['port', 'reg'], 'io', 'dword a to port imm', 'iopl'),
  d(0xa7, 'out', ['reg', 'reg'], 'io', 'dword b to the port in a', 'iopl'),
];

/** Opcode -> definition (undefined: #UD). */
export const BY_OPCODE: readonly (InstrDef | undefined)[] = (() => {
  const t: (InstrDef | undefined)[] = new Array(256).fill(undefined);
  for (const i of INSTRUCTIONS) {
    if (t[i.op] !== undefined) throw new Error(`opcode 0x${i.op.toString(16)} defined twice`);
    t[i.op] = i;
  }
  return t;
})();

/** Opcode constants by a stable name: `OP['add reg,reg']`. */
export const OP: Readonly<Record<string, number>> = Object.fromEntries(
  INSTRUCTIONS.map((i) => [`${i.mnemonic}${i.operands.length ? ' ' : ''}${i.operands.join(',')}`, i.op]),
);

export const REG_NAMES = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'] as const;
export const SREG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'] as const;
export const CR_NAMES = ['cr0', 'cr1', 'cr2', 'cr3', 'cr4'] as const;
export const NO_BASE = 8;
export const NO_SEG = 0xf;
export const INSTR_BYTES = 8;

/** General registers by name (index into the register file). */
export const R = { EAX: 0, ECX: 1, EDX: 2, EBX: 3, ESP: 4, EBP: 5, ESI: 6, EDI: 7 } as const;

/** Segment registers by name (x86 order). */
export const S = { ES: 0, CS: 1, SS: 2, DS: 3, FS: 4, GS: 5 } as const;

/** Largest value of each operand kind that is one field (docs/isa.md, "range"). */
export const OPERAND_MAX = {
  reg: REG_NAMES.length - 1,
  sreg: SREG_NAMES.length - 1,
  cr: CR_NAMES.length - 1,
  imm: 0xffff_ffff,
  imm16: 0xffff,
  vec: 0xff,
  port: 0xffff,
} as const satisfies Partial<Record<OperandKind, number>>;

/** Where one operand lives in the 8 bytes (the placement rule in this file's header). */
export type Slot = 'a' | 'b' | 'mem' | 'imm' | 'far';

export function operandSlots(def: InstrDef): readonly Slot[] {
  let nibbles = 0;
  return def.operands.map((k): Slot => {
    if (k === 'reg' || k === 'sreg' || k === 'cr') return nibbles++ === 0 ? 'a' : 'b';
    if (k === 'mem') return 'mem';
    return k === 'far' ? 'far' : 'imm';
  });
}

/** Opcode -> the slot of each operand, in operand order (undefined: #UD). */
export const SLOTS: readonly (readonly Slot[] | undefined)[] = BY_OPCODE.map((def) =>
  def === undefined ? undefined : operandSlots(def),
);

// ---- strict decoding (issue 3) ----
//
// An encoding is valid when every field an operand uses is in that operand's range and every field
// no operand uses is 0; anything else raises #UD, a fault before anything changes, as a real CPU
// does for an invalid encoding. Dword 0 holds the opcode (bits 0-7), nibble A (8-11), nibble B
// (12-15), byte 2 (16-23) and byte 3 (24-31); dword 1 is imm.
//
// Most of the rule is two masks per opcode, bits that must be zero: an unused field entirely; the
// top bit of a register nibble (registers 0..7); the bits of imm above a vector (0xFF), a port or
// an imm16 (0xFFFF); byte 2's high nibble and byte 3 of a memory operand. The run loop checks them
// for every instruction with `((w0 & MBZ[2 op]) | (imm & MBZ[2 op + 1])) !== 0`. What a mask cannot
// say is checked where the operand is decoded: a segment register above 5, a control register
// above 4 (both only in system and segment instructions), and a memory operand's base above 8 or
// segment 6..14, by the MEM_SEGMENT lookup that also resolves the default segment.

/** Must-be-zero masks: [2 op] for dword 0, [2 op + 1] for imm (both 0 for an undefined opcode). */
export const MBZ: Int32Array = (() => {
  const t = new Int32Array(512);
  for (const def of INSTRUCTIONS) {
    let w0 = 0xffff_ff00 | 0; // every field but the opcode
    let w1 = -1; // imm unused
    for (const [i, slot] of SLOTS[def.op]!.entries()) {
      const kind = def.operands[i]!;
      if (slot === 'a')
        w0 &= ~0x700; // A in 0..7: bit 3 must be 0 (sreg, cr: also a range check)
      else if (slot === 'b') w0 &= ~0x7000;
      else if (slot === 'mem') {
        w0 &= ~0xf_f000; // base nibble and the segment's low nibble (both range-checked)
        w1 = 0;
      } else if (slot === 'far') {
        w0 &= ~0xffff_0000;
        w1 = 0;
      } else w1 = ~OPERAND_MAX[kind as 'imm' | 'imm16' | 'vec' | 'port'];
    }
    t[2 * def.op] = w0;
    t[2 * def.op + 1] = w1;
  }
  return t;
})();

/**
 * The segment a memory operand uses, indexed by `base | segment << 4` (bits 12-19 of dword 0, so
 * `(w0 >>> 12) & 0xff`): segment 0-5 as written, 0xF (none) SS for an ESP or EBP base and DS
 * otherwise; 0xFF (#UD) for a base above 8 (NO_BASE) or a segment 6..14.
 */
export const MEM_SEGMENT: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(0xff);
  for (let base = 0; base <= NO_BASE; base++) {
    for (let seg = 0; seg < SREG_NAMES.length; seg++) t[base | (seg << 4)] = seg;
    t[base | (NO_SEG << 4)] = base === R.ESP || base === R.EBP ? S.SS : S.DS;
  }
  return t;
})();

const hex = (v: number): string => `0x${v.toString(16)}`;

/**
 * Why the instruction with dwords `w0`, `imm` raises #UD at decoding, or undefined when its
 * encoding is valid: the rule above, field by field, in words (the disassembler prints it as
 * `(bad 0xNN: reason)`). Exactly the encodings the CPU refuses.
 */
export function encodingError(w0: number, imm: number): string | undefined {
  const op = w0 & 0xff;
  const def = BY_OPCODE[op];
  if (def === undefined) return 'invalid opcode';
  const a = (w0 >>> 8) & 0xf;
  const b = (w0 >>> 12) & 0xf;
  const byte2 = (w0 >>> 16) & 0xff;
  const byte3 = w0 >>> 24;
  const used = { a: false, b: false, byte2: false, byte3: false, imm: false };
  for (const [i, slot] of SLOTS[op]!.entries()) {
    const kind = def.operands[i]!;
    if (slot === 'a' || slot === 'b') {
      const n = slot === 'a' ? a : b;
      used[slot] = true;
      if (n > OPERAND_MAX[kind as 'reg' | 'sreg' | 'cr']) return `${kind} ${n}`;
    } else if (slot === 'mem') {
      used.b = used.byte2 = used.imm = true;
      if (b > NO_BASE) return `base ${b}`;
      if (byte2 >= SREG_NAMES.length && byte2 !== NO_SEG) return `segment ${byte2}`;
    } else if (slot === 'far') {
      used.byte2 = used.byte3 = used.imm = true;
    } else {
      used.imm = true;
      const max = OPERAND_MAX[kind as 'imm' | 'imm16' | 'vec' | 'port'];
      if (imm >>> 0 > max) return `${kind} ${hex(imm >>> 0)}`;
    }
  }
  if (!used.a && a !== 0) return `unused A ${hex(a)}`;
  if (!used.b && b !== 0) return `unused B ${hex(b)}`;
  if (!used.byte2 && byte2 !== 0) return `unused byte 2 ${hex(byte2)}`;
  if (!used.byte3 && byte3 !== 0) return `unused byte 3 ${hex(byte3)}`;
  if (!used.imm && imm !== 0) return `unused imm ${hex(imm >>> 0)}`;
  return undefined;
}
