/** Every kind of assembler error, each with its exact `file:line: message`. */
import { ClefnetError } from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { type AssembleOptions, assemble } from '../../src/asm/assembler.js';
import { AsmError, type AsmErrorKind } from '../../src/asm/errors.js';

const REGS = '(registers: eax ecx edx ebx esp ebp esi edi; es cs ss ds fs gs; cr0 cr1 cr2 cr3 cr4)';
const MOV_FORMS = 'forms: reg,reg; reg,imm; sreg,reg; reg,sreg; cr,reg; reg,cr';
const cycle = (p: string) => (p === 'a.s' ? '.include "b.s"' : '.include "a.s"');

/** [case, source, options, kind, message] */
const CASES: readonly [string, string, AssembleOptions, AsmErrorKind, string][] = [
  ['unknown mnemonic', 'nop\n  mvo eax, 1', {}, 'unknown-mnemonic', "boot.s:2: unknown mnemonic 'mvo'"],
  [
    'far where imm',
    'mov eax, cs:5',
    {},
    'operand-mismatch',
    `boot.s:1: operands (reg, far) do not fit 'mov' (${MOV_FORMS})`,
  ],
  [
    'operand count',
    'nop eax',
    {},
    'operand-mismatch',
    "boot.s:1: operands (reg) do not fit 'nop' (forms: none)",
  ],
  [
    'mem where reg',
    'push [eax]',
    {},
    'operand-mismatch',
    "boot.s:1: operands (mem) do not fit 'push' (forms: reg; imm; sreg)",
  ],
  ['undefined label', 'jmp nowhere', {}, 'undefined-symbol', "boot.s:1: undefined symbol 'nowhere'"],
  ['undefined local', 'a: jmp .x', {}, 'undefined-symbol', "boot.s:1: undefined symbol 'a.x'"],
  [
    'later label in .org',
    '.org END\nEND:',
    {},
    'undefined-symbol',
    "boot.s:1: undefined symbol 'END' (.org, .align and .space need symbols defined above them)",
  ],
  [
    'duplicate label',
    'start: nop\nstart: nop',
    {},
    'duplicate-symbol',
    "boot.s:2: duplicate label 'start' (first defined at boot.s:1)",
  ],
  [
    'label after equ',
    'X equ 1\nX: nop',
    {},
    'duplicate-symbol',
    "boot.s:2: duplicate label 'X' (first defined at boot.s:1)",
  ],
  [
    'equ after define',
    'X equ 2',
    { defines: { X: 1 } },
    'duplicate-symbol',
    "boot.s:1: duplicate symbol 'X' (given in defines)",
  ],
  [
    'selector > 0xffff',
    'jmpf 0x10000:0',
    {},
    'range',
    'boot.s:1: selector 0x10000 out of range (0x0..0xffff)',
  ],
  [
    'far offset',
    'jmpf 8:0x100000000',
    {},
    'range',
    'boot.s:1: offset 0x100000000 out of range (-0x80000000..0xffffffff)',
  ],
  ['vector', 'int 256', {}, 'range', 'boot.s:1: vector 0x100 out of range (0x0..0xff)'],
  ['port', 'in eax, 0x10000', {}, 'range', 'boot.s:1: port 0x10000 out of range (0x0..0xffff)'],
  ['negative port', 'out -1, eax', {}, 'range', 'boot.s:1: port -0x1 out of range (0x0..0xffff)'],
  [
    'imm too big',
    'mov eax, 0x100000000',
    {},
    'range',
    'boot.s:1: immediate 0x100000000 out of range (-0x80000000..0xffffffff)',
  ],
  [
    'imm too small',
    'mov eax, -0x80000001',
    {},
    'range',
    'boot.s:1: immediate -0x80000001 out of range (-0x80000000..0xffffffff)',
  ],
  [
    'displacement',
    'ld eax, [ebx+0x100000000]',
    {},
    'range',
    'boot.s:1: displacement 0x100000000 out of range (-0x80000000..0xffffffff)',
  ],
  ['.byte', '.byte 256', {}, 'range', 'boot.s:1: byte 0x100 out of range (-0x80..0xff)'],
  ['.word', '.word -0x8001', {}, 'range', 'boot.s:1: word -0x8001 out of range (-0x8000..0xffff)'],
  ['fill', '.space 2, 0x100', {}, 'range', 'boot.s:1: fill byte 0x100 out of range (-0x80..0xff)'],
  ['.align 0', '.align 0', {}, 'range', 'boot.s:1: alignment 0x0 out of range (0x1..0x10000)'],
  ['division by zero', '.dword 1/0', {}, 'range', 'boot.s:1: division by zero'],
  ['shift', '.dword 1 << 65', {}, 'range', 'boot.s:1: shift count 65 out of range (0..64)'],
  ['cr5', 'mov eax, cr5', {}, 'bad-register', `boot.s:1: bad register 'cr5' ${REGS}`],
  ['16-bit register', 'mov ax, 1', {}, 'bad-register', `boot.s:1: bad register 'ax' ${REGS}`],
  ['sreg as base', 'ld eax, [cs+4]', {}, 'bad-register', "boot.s:1: 'cs' cannot be a base register"],
  [
    'reg as segment',
    'ld eax, [eax:ebx]',
    {},
    'bad-register',
    "boot.s:1: 'eax' is not a segment register (es cs ss ds fs gs)",
  ],
  [
    'reg in expression',
    'mov eax, ebx+1',
    {},
    'bad-register',
    "boot.s:1: register 'ebx' cannot be used as a value",
  ],
  [
    'reg in displacement',
    'ld eax, [4+ebx]',
    {},
    'bad-register',
    "boot.s:1: register 'ebx' cannot be used as a value",
  ],
  ['register as label', 'eax: nop', {}, 'bad-register', "boot.s:1: 'eax' is a register name"],
  ['register as constant', 'esp equ 4', {}, 'bad-register', "boot.s:1: 'esp' is a register name"],
  [
    'dangling operator',
    'mov eax, 1 +',
    {},
    'syntax',
    "boot.s:1: bad expression '1 +': a value is missing at the end",
  ],
  ['open parenthesis', 'mov eax, (1', {}, 'syntax', "boot.s:1: bad expression '(1': missing ')'"],
  ['bad number', 'mov eax, 12abc', {}, 'syntax', "boot.s:1: bad expression '12abc': bad number '12abc'"],
  ['bad character', 'mov eax, @', {}, 'syntax', "boot.s:1: bad expression '@': unexpected '@'"],
  [
    'long char literal',
    "mov eax, 'ab'",
    {},
    'syntax',
    "boot.s:1: bad expression ''ab'': a character literal holds exactly one byte",
  ],
  ['unterminated string', '.ascii "abc', {}, 'syntax', 'boot.s:1: unterminated string'],
  ['unknown escape', '.ascii "\\q"', {}, 'syntax', "boot.s:1: unknown escape '\\q'"],
  ['empty operand', 'mov eax,', {}, 'syntax', 'boot.s:1: empty operand'],
  ['missing ]', 'ld eax, [ebx', {}, 'syntax', "boot.s:1: bad memory operand '[ebx': missing ']'"],
  [
    'scaled index',
    'ld eax, [ebx*2]',
    {},
    'syntax',
    "boot.s:1: bad memory operand '[ebx*2]': expected + or - after the base register",
  ],
  ['empty memory', 'ld eax, []', {}, 'syntax', "boot.s:1: bad memory operand '[]': no base or displacement"],
  ['.ascii number', '.ascii 5', {}, 'syntax', "boot.s:1: expected a quoted string, got '5'"],
  ['.equ arity', '.equ X', {}, 'syntax', 'boot.s:1: expected NAME equ expr or .equ NAME, expr'],
  ['.include name', '.include x.s', {}, 'syntax', 'boot.s:1: .include needs one quoted file name'],
  ['section name', '.section "x"', {}, 'syntax', `boot.s:1: bad section name '"x"'`],
  ['.text with a name', '.text foo', {}, 'syntax', "boot.s:1: bad section name 'foo'"],
  ['bad define name', 'nop', { defines: { 'a b': 1 } }, 'syntax', "boot.s: bad define name 'a b'"],
  ['unknown directive', '.foo 1', {}, 'unknown-directive', "boot.s:1: unknown directive '.foo'"],
  [
    '.org backwards',
    'nop\nnop\n.org 8',
    {},
    'layout',
    'boot.s:3: .org 0x8 moves backwards (already at 0x10)',
  ],
  [
    '.org below origin',
    '.org 0x10',
    { origin: 0x100 },
    'layout',
    'boot.s:1: .org 0x10 is below the origin 0x100',
  ],
  [
    'too large',
    '.org 0\n.byte 1\n.org 0x8000000',
    {},
    'layout',
    'boot.s:3: the output would be 0x8000000 bytes, more than 0x4000000',
  ],
  ['bad origin', 'nop', { origin: -1 }, 'layout', 'boot.s: origin -1 is not an address (0..0xffffffff)'],
  [
    'constant cycle',
    'A equ B\nB equ A\n.dword A',
    {},
    'undefined-symbol',
    "boot.s:1: constant 'A' is defined in terms of itself",
  ],
  [
    'macro arity',
    '.macro m a, b\nnop\n.endm\nm 1',
    {},
    'macro',
    "boot.s:4: macro 'm' takes 2 argument(s), got 1",
  ],
  ['no .endm', 'nop\n.macro m\nnop', {}, 'macro', "boot.s:2: macro 'm' has no '.endm'"],
  ['lone .endm', '.endm', {}, 'macro', "boot.s:1: '.endm' without '.macro'"],
  [
    'nested definition',
    '.macro m\n.macro n\n.endm',
    {},
    'macro',
    'boot.s:2: a macro cannot be defined inside another',
  ],
  ['macro named mov', '.macro mov a\n.endm', {}, 'macro', "boot.s:1: macro 'mov' would hide an instruction"],
  [
    'error in a macro',
    '.macro m\nbogus\n.endm\nnop\nm',
    {},
    'unknown-mnemonic',
    "boot.s:5: unknown mnemonic 'bogus' (in macro 'm')",
  ],
  [
    'recursive macro',
    '.macro m\nm\n.endm\nm',
    {},
    'macro',
    "boot.s:4: macro 'm' nests too deeply (in macro 'm')",
  ],
  [
    'no include callback',
    '.include "x.s"',
    {},
    'include',
    "boot.s:1: cannot include 'x.s': no include callback was given",
  ],
  [
    'include fails',
    '.include "x.s"',
    {
      include: () => {
        throw new Error('ENOENT: no such file');
      },
    },
    'include',
    "boot.s:1: cannot include 'x.s': ENOENT: no such file",
  ],
  [
    'include cycle',
    '.include "a.s"',
    { include: cycle },
    'include',
    'b.s:1: include cycle: boot.s -> a.s -> b.s -> a.s',
  ],
  [
    'error in an included file',
    'nop\n.include "a.s"',
    { include: () => 'nop\nmvo' },
    'unknown-mnemonic',
    "a.s:2: unknown mnemonic 'mvo'",
  ],
];

function thrown(source: string, opts: AssembleOptions): unknown {
  try {
    assemble(source, { file: 'boot.s', ...opts });
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('assembler errors', () => {
  for (const [name, source, opts, kind, message] of CASES) {
    it(name, () => {
      const e = thrown(source, opts);
      expect(e, name).toBeInstanceOf(AsmError);
      expect((e as AsmError).message, name).toBe(message);
      expect((e as AsmError).kind, name).toBe(kind);
    });
  }

  it('is a ClefnetError with code CONFIG_INVALID, file, line and the bare message', () => {
    const e = thrown('nop\nnop\n  mvo eax, 1', {}) as AsmError;
    expect(e).toBeInstanceOf(ClefnetError);
    expect(e.name).toBe('AsmError');
    expect(e.code).toBe('CONFIG_INVALID');
    expect([e.file, e.line, e.detail]).toEqual(['boot.s', 3, "unknown mnemonic 'mvo'"]);
    expect(e.meta).toEqual({ kind: 'unknown-mnemonic', file: 'boot.s', line: 3 });
  });

  it('names the source <source> when no file is given', () => {
    expect(() => assemble('mvo')).toThrow("<source>:1: unknown mnemonic 'mvo'");
  });
});
