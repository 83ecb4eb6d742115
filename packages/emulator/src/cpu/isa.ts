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
 * none), byte 2 (segment) and imm (displacement); imm, vec and port take imm; far takes sel and imm.
 */

export type OperandKind = 'reg' | 'sreg' | 'cr' | 'imm' | 'mem' | 'far' | 'vec' | 'port';

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
  shl: 'a <<= (b & 31); CF = last bit out',
  shr: 'a >>>= (b & 31); CF = last bit out',
  sar: 'a >>= (b & 31) (arithmetic); CF = last bit out',
  mul: 'a = low 32 bits of a * b (unsigned); CF = OF = high half != 0',
  divu: 'a = a / b (unsigned); #DE when b = 0',
  remu: 'a = a % b (unsigned); #DE when b = 0',
};
const JCC = [
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
  d(0x40, 'neg', ['reg'], 'alu', 'a = -a; CF = a != 0'),
  d(0x41, 'not', ['reg'], 'alu', 'a = ~a; flags unchanged'),
  d(0x42, 'inc', ['reg'], 'alu', 'a += 1; CF unchanged'),
  d(0x43, 'dec', ['reg'], 'alu', 'a -= 1; CF unchanged'),
  d(0x50, 'jmp', ['imm'], 'branch', 'EIP = imm (near)'),
  d(0x51, 'jmp', ['reg'], 'branch', 'EIP = a (near)'),
  d(0x52, 'call', ['imm'], 'branch', 'push EIP of the next instruction; EIP = imm'),
  d(0x53, 'call', ['reg'], 'branch', 'push EIP of the next instruction; EIP = a'),
  d(0x54, 'ret', [], 'branch', 'pop EIP (near)'),
  d(0x55, 'ret', ['imm'], 'branch', 'pop EIP; ESP += imm'),
  ...JCC.map((m, i) => d(0x58 + i, m, ['imm'], 'branch', `EIP = imm if ${JCC_TEXT[m]}`)),
  d(0x70, 'jmpf', ['far'], 'far', 'far jump: code segment or call gate (reference §3.2, §3.3)'),
  d(0x71, 'callf', ['far'], 'far', 'far call: code segment or call gate, stack switch inward (§3.3)'),
  d(0x72, 'retf', [], 'far', 'far return, to an outer ring if the return CS RPL > CPL (§3.4)'),
  d(0x73, 'retf', ['imm'], 'far', 'far return, then release imm bytes of parameters'),
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
