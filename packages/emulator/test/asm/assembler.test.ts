/** Assembler features: labels, constants, expressions, layout directives, data, macros, include, sections. */
import { describe, expect, it } from 'vitest';
import { assemble } from '../../src/asm/assembler.js';
import { disassembleAll } from '../../src/asm/disasm.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const text = (src: string, origin = 0) => {
  const r = assemble(src, { origin });
  return disassembleAll(r.bytes, r.origin).map((l) => l.text);
};
/** The bytes of `.dword expr`, as a number. */
const value = (expr: string, opts: Parameters<typeof assemble>[1] = {}) =>
  new DataView(assemble(`.dword ${expr}`, opts).bytes.buffer).getUint32(0, true);

describe('labels', () => {
  it('resolves forward and backward references in two passes', () => {
    const src = 'start: jmp end\n  nop\nend: jmp start\n  call end';
    expect(text(src, 0x1000)).toEqual(['jmp 0x1010', 'nop', 'jmp 0x1000', 'call 0x1010']);
    expect([...assemble(src, { origin: 0x1000 }).labels]).toEqual([
      ['start', 0x1000],
      ['end', 0x1010],
    ]);
  });

  it('scopes .local labels to the global label above them', () => {
    const src = [
      'a: nop',
      '.loop: jmp .loop',
      'b:',
      '.loop: jmp .loop',
      '  jmp a.loop',
      '.x: .y: jmp .y',
    ].join('\n');
    const r = assemble(src);
    expect([...r.labels]).toEqual([
      ['a', 0],
      ['a.loop', 8],
      ['b', 16],
      ['b.loop', 16],
      ['b.x', 32],
      ['b.y', 32],
    ]);
    expect(text(src)).toEqual(['nop', 'jmp 0x8', 'jmp 0x10', 'jmp 0x8', 'jmp 0x20']);
  });

  it('gives $ the address of the current line', () => {
    expect(text('nop\nhere: jmp $\njmp $+8', 0x100)).toEqual(['nop', 'jmp 0x108', 'jmp 0x118']);
  });
});

describe('constants and expressions', () => {
  const cases: [string, number][] = [
    ['1+2*3', 7],
    ['(1+2)*3', 9],
    ['-1', 0xffffffff],
    ['~0', 0xffffffff],
    ['-0x80000000', 0x80000000],
    ['1<<4|1', 0x11],
    ['0x100 >> 2', 0x40],
    ['7 % 3', 1],
    ['-7 / 2', 0xfffffffd],
    ['5 & 3 ^ 1', 0],
    ['1 | 2 ^ 3', 1],
    ['10 - 2 - 3', 5],
    ["'A'", 0x41],
    ["'\\n'", 10],
    ["'\\''", 39],
    ["';'", 0x3b],
    ['0b1010', 10],
    ['0X1f', 31],
    ['+3', 3],
    ['--3', 3],
    ['((2))', 2],
  ];
  for (const [e, v] of cases) {
    it(`${e} = 0x${v.toString(16)}`, () => expect(value(e), e).toBe(v));
  }

  it('defines constants with equ and .equ, usable before their line', () => {
    const src = [
      '.dword SIZE, BASE',
      'BASE equ 0x1000',
      '.equ SIZE, end - start',
      'start: nop',
      'nop',
      'end:',
    ].join('\n');
    const r = assemble(src);
    expect(hex(r.bytes)).toBe(`10000000${'00100000'}${'01'.padEnd(16, '0')}${'01'.padEnd(16, '0')}`);
    expect([...r.constants]).toEqual([
      ['BASE', 0x1000],
      ['SIZE', 16],
    ]);
  });

  it('takes defines from the options', () => {
    expect(value('DEBUG * 2 + LEVEL', { defines: { DEBUG: 1, LEVEL: -3 } })).toBe(0xffffffff);
    expect([...assemble('nop', { defines: { X: 5 } }).constants]).toEqual([['X', 5]]);
  });

  it('evaluates a constant in the scope of its line', () => {
    expect(value('A\nf: nop\n.l: nop\nA equ .l')).toBe(12);
  });
});

describe('layout', () => {
  it('.org pads with zeros up to an absolute address', () => {
    const r = assemble('nop\n.org 0x110\nnop', { origin: 0x100 });
    expect(hex(r.bytes)).toBe(`0100000000000000${'00'.repeat(8)}0100000000000000`);
    expect(r.origin).toBe(0x100);
  });

  it('takes the origin from .org before any label or byte when none is given', () => {
    const r = assemble('ORG equ 0x7c00\n.org 0x10\n.org ORG\nstart: nop');
    expect(r.origin).toBe(0x7c00);
    expect(r.bytes.length).toBe(8);
    expect(r.labels.get('start')).toBe(0x7c00);
    expect(r.sections).toEqual([{ name: '.text', start: 0x7c00, end: 0x7c08 }]);
    expect(assemble('nop').origin).toBe(0);
    expect(assemble('').bytes.length).toBe(0);
  });

  it('.align pads to a multiple, with an optional fill', () => {
    expect(hex(assemble('.byte 1\n.align 4\n.byte 2\n.align 8, 0xff\n.byte 3').bytes)).toBe(
      '0100000002ffffff03',
    );
    expect(hex(assemble('.byte 1\n.align 1\n.byte 2', { origin: 3 }).bytes)).toBe('0102');
    expect(hex(assemble('.byte 1\n.align 4\n.byte 2', { origin: 3 }).bytes)).toBe('0102');
    expect(hex(assemble('.byte 1\n.align 4\n.byte 2', { origin: 4 }).bytes)).toBe('0100000002');
  });
});

describe('data directives', () => {
  const cases: [string, string][] = [
    ['.byte 1, -1, 0xff, \'a\', "hi", -128', '01ffff616869' + '80'],
    ['.word 0x1234, -2, 65535', '3412feffffff'],
    ['.dword 0xdeadbeef, -1, 1', 'efbeaddeffffffff01000000'],
    ['.ascii "a\\tb"', '610962'],
    ['.ascii "x", "y"', '7879'],
    ['.asciz "x\\0y\\\\\\""', '7800795c2200'],
    ['.asciz "a", "b"', '61006200'],
    ['.ascii "\\r\\n\\x41\\\'"', '0d0a4127'],
    ['.ascii "é"', 'c3a9'],
    ['.ascii "; not a comment # either"', Buffer.from('; not a comment # either').toString('hex')],
    ['.space 3', '000000'],
    ['.space 3, 0xaa', 'aaaaaa'],
    ['.space 0', ''],
    ['.byte 1 ; comment\n# comment\n.byte 2 # comment', '0102'],
  ];
  for (const [src, bytes] of cases) {
    it(src.replaceAll('\n', ' | '), () => expect(hex(assemble(src).bytes), src).toBe(bytes));
  }
});

describe('macros', () => {
  it('substitutes arguments and makes \\@ labels unique per expansion', () => {
    const src = [
      '.macro spin reg, n',
      '  mov \\reg, \\n',
      '.L\\@: dec \\reg',
      '  jnz .L\\@',
      '.endm',
      'start: spin eax, 3',
      '  spin ecx, 2*2',
    ].join('\n');
    const r = assemble(src);
    expect(text(src)).toEqual(['mov eax, 0x3', 'dec eax', 'jnz 0x8', 'mov ecx, 0x4', 'dec ecx', 'jnz 0x20']);
    expect([...r.labels]).toEqual([
      ['start', 0],
      ['start.L0', 8],
      ['start.L1', 32],
    ]);
    expect(r.lines.map((l) => `${l.line} ${l.text}`)).toEqual([
      '6 mov eax, 3',
      '6 .L0: dec eax',
      '6 jnz .L0',
      '7 mov ecx, 2*2',
      '7 .L1: dec ecx',
      '7 jnz .L1',
    ]);
  });

  it('expands macros inside macros and keeps other backslashes', () => {
    const src = ['.macro two x', '  one \\x', '  one \\x+1', '.endm', '.macro one v', '.byte \\v', '.endm'];
    const more = ['.macro say s', '.ascii \\s, "\\n"', '.endm', 'two 5', 'say "ok"'];
    expect(hex(assemble([...src, ...more].join('\n')).bytes)).toBe('05066f6b0a');
  });

  it('takes an empty parameter list', () => {
    expect(text('.macro halt2\nhlt\nhlt\n.endm\nhalt2')).toEqual(['hlt', 'hlt']);
  });
});

describe('include', () => {
  const files: Record<string, string> = {
    'defs.s': 'PORT equ 0x3f8\n.include "more.s"',
    'more.s': '.macro put r\n out PORT, \\r\n.endm\nWIDTH equ 4',
  };
  const include = (path: string) => {
    const f = files[path];
    if (f === undefined) throw new Error('no such file');
    return f;
  };

  it('reads included files through the callback, with their own line numbers', () => {
    const calls: string[] = [];
    const r = assemble('.include "defs.s"\nput eax\n.dword WIDTH', {
      file: 'main.s',
      include: (p, from) => {
        calls.push(`${from} -> ${p}`);
        return include(p);
      },
    });
    expect(calls).toEqual(['main.s -> defs.s', 'defs.s -> more.s']);
    expect(hex(r.bytes)).toBe('a6000000f803000004000000');
    expect(r.lines.map((l) => `${l.file}:${l.line}`)).toEqual(['main.s:2', 'main.s:3']);
  });

  it('maps included lines to their own file', () => {
    const r = assemble('nop\nhere: .include "code.s"\nnop', { file: 'main.s', include: () => '\n  hlt' });
    expect(r.lines.map((l) => [l.address, `${l.file}:${l.line}`, l.text])).toEqual([
      [0, 'main.s:1', 'nop'],
      [8, 'code.s:2', 'hlt'],
      [16, 'main.s:3', 'nop'],
    ]);
    expect(r.labels.get('here')).toBe(8);
  });
});

describe('sections', () => {
  it('lays sections out in order of first appearance, each collecting its lines', () => {
    // In layout order the labels are start, msg.m, msg, msg.l, buf.
    const src = [
      'start: ld eax, [msg]',
      '.section .data',
      'msg: .ascii "hey"',
      '.l: .byte 0',
      '.text',
      '.m: jmp .m',
      '.data',
      '.dword msg.m',
      '.section .bss',
      '.align 8',
      'buf: .space 16',
    ].join('\n');
    const r = assemble(src, { origin: 0x1000, file: 's.s' });
    expect(r.sections).toEqual([
      { name: '.text', start: 0x1000, end: 0x1010 },
      { name: '.data', start: 0x1010, end: 0x1018 },
      { name: '.bss', start: 0x1018, end: 0x1028 },
    ]);
    expect([...r.labels]).toEqual([
      ['start', 0x1000],
      ['msg.m', 0x1008], // scoped in source order: msg is the global label above it
      ['msg', 0x1010],
      ['msg.l', 0x1013],
      ['buf', 0x1018],
    ]);
    expect(hex(r.bytes.subarray(0, 0x18))).toBe('12800f0010100000' + '5000000008100000' + '6865790008100000');
    expect(r.lines.map((l) => [l.address, l.size, l.line])).toEqual([
      [0x1000, 8, 1],
      [0x1008, 8, 6],
      [0x1010, 3, 3],
      [0x1013, 1, 4],
      [0x1014, 4, 8],
      [0x1018, 16, 11],
    ]);
  });

  it('can pin a section with .org', () => {
    const r = assemble('nop\n.section .data\n.org 0x20\nx: .byte 7', { origin: 0 });
    expect(r.sections).toEqual([
      { name: '.text', start: 0, end: 8 },
      { name: '.data', start: 0x20, end: 0x21 },
    ]);
    expect(r.bytes.length).toBe(0x21);
    expect(r.labels.get('x')).toBe(0x20);
  });
});
