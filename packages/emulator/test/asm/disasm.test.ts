/** Decoder and disassembler: golden vectors, field decoding, invalid fields and truncated input. */
import { ClefnetError } from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { assemble } from '../../src/asm/assembler.js';
import { decode, disassemble, disassembleAll, invalidReason } from '../../src/asm/disasm.js';
import { BY_OPCODE } from '../../src/cpu/isa.js';

const bytesOf = (hex: string) => Uint8Array.from(hex.match(/../g)!.map((b) => Number.parseInt(b, 16)));

/** [canonical text, its 8 bytes in hex] */
const GOLDEN: readonly [string, string][] = [
  ['ld eax, [ds:ebx+0x10]', '1230030010000000'],
  ['jmpf 0x0018:0x00001000', '7000180000100000'],
  ['mov cr3, eax', '9803000000000000'],
  ['mov eax, cr0', '9900000000000000'],
  ['in eax, 0x3f8', 'a4000000f8030000'],
  ['in eax, edx', 'a520000000000000'],
  ['out 0x3f8, eax', 'a6000000f8030000'],
  ['out edx, eax', 'a702000000000000'],
  ['int 0x80', '7500000080000000'],
  ['st [ebp-0x4], ecx', '13510f00fcffffff'],
  ['ld eax, [esp]', '12400f0000000000'],
  ['lea esi, [0x1058]', '16860f0058100000'],
  ['lgdt [cs:0x0]', '9080010000000000'],
  ['mov ds, eax', '8003000000000000'],
  ['mov eax, ss', '8120000000000000'],
  ['push 0xffffffff', '18000000ffffffff'],
  ['mov edi, 0x5', '1107000005000000'],
  ['nop', '0100000000000000'],
];

describe('golden vectors', () => {
  for (const [text, hex] of GOLDEN) {
    it(text, () => {
      expect(Buffer.from(assemble(text).bytes).toString('hex'), `assemble '${text}'`).toBe(hex);
      expect(disassemble(bytesOf(hex), 0), `disassemble ${hex}`).toBe(text);
    });
  }

  it('accepts non-canonical spellings and prints the canonical one', () => {
    const cases: [string, string][] = [
      ['MOV EAX, 5', 'mov eax, 0x5'],
      ['ld eax, [ebx + 0]', 'ld eax, [ebx]'],
      ['ld eax, [ebx + 16]', 'ld eax, [ebx+0x10]'],
      ['ld eax, [ebx + -16]', 'ld eax, [ebx-0x10]'],
      ['ld eax, [ebx-(2*8)]', 'ld eax, [ebx-0x10]'],
      ['ld eax, [ds:8*2]', 'ld eax, [ds:0x10]'],
      ['mov eax, -1', 'mov eax, 0xffffffff'],
      ["mov eax, 'A'", 'mov eax, 0x41'],
      ['jmpf 24:4096', 'jmpf 0x0018:0x00001000'],
    ];
    for (const [src, canon] of cases) {
      expect(disassemble(assemble(src).bytes, 0), src).toBe(canon);
    }
  });
});

describe('decode', () => {
  it('splits the 8 bytes into fields at any offset', () => {
    const bytes = new Uint8Array(16);
    bytes.set(bytesOf('7031180078563412'), 8);
    const d = decode(bytes, 8);
    expect(d).toEqual({ op: 0x70, def: BY_OPCODE[0x70], a: 1, b: 3, seg: 0x18, sel: 0x18, imm: 0x12345678 });
    expect(decode(bytesOf('0021ff7fffffffff'), 0)).toEqual({
      op: 0,
      def: undefined,
      a: 1,
      b: 2,
      seg: 0xff,
      sel: 0x7fff,
      imm: 0xffffffff,
    });
  });

  it('throws ENCODING_TRUNCATED when fewer than 8 bytes remain', () => {
    for (const [len, at] of [
      [7, 0],
      [16, 9],
      [8, -1],
    ] as const) {
      let err: unknown;
      try {
        decode(new Uint8Array(len), at);
      } catch (e) {
        err = e;
      }
      expect(err, `length ${len} offset ${at}`).toBeInstanceOf(ClefnetError);
      expect((err as ClefnetError).code, `length ${len} offset ${at}`).toBe('ENCODING_TRUNCATED');
      expect((err as ClefnetError).message).toBe(
        `an instruction at offset ${at} runs past the end of ${len} bytes`,
      );
    }
  });
});

describe('encodings the CPU refuses (#UD): fields that name nothing, unused fields not 0', () => {
  const cases: [string, string][] = [
    ['1090000000000000', '(bad 0x10: reg 9)'],
    ['1008000000000000', '(bad 0x10: reg 8)'],
    ['1290030000000000', '(bad 0x12: base 9)'],
    ['1230060000000000', '(bad 0x12: segment 6)'],
    ['12300e0000000000', '(bad 0x12: segment 14)'],
    ['8006000000000000', '(bad 0x80: sreg 6)'],
    ['9805000000000000', '(bad 0x98: cr 5)'],
    ['7500000000010000', '(bad 0x75: vec 0x100)'],
    ['a400000000000100', '(bad 0xa4: port 0x10000)'],
    // strict decoding: the CPU raises #UD for these, so the disassembler refuses them too
    ['5500000000000100', '(bad 0x55: imm16 0x10000)'],
    ['7300000000000100', '(bad 0x73: imm16 0x10000)'],
    ['12300f0100000000', '(bad 0x12: unused byte 3 0x1)'],
    ['12301f0000000000', '(bad 0x12: segment 31)'],
    ['01ffffffffffffff', '(bad 0x01: unused A 0xf)'],
    ['0110000000000000', '(bad 0x01: unused B 0x1)'],
    ['1101ff0005000000', '(bad 0x11: unused byte 2 0xff)'],
    ['1021000100000000', '(bad 0x10: unused byte 3 0x1)'],
    ['1021000000000080', '(bad 0x10: unused imm 0x80000000)'],
    ['7500000080000000', 'int 0x80'],
  ];
  for (const [hex, text] of cases) {
    it(`${hex} -> ${text}`, () => {
      expect(disassemble(bytesOf(hex), 0), hex).toBe(text);
      const why = text.startsWith('(bad') ? text.slice(11, -1) : undefined;
      expect(invalidReason(decode(bytesOf(hex), 0)), hex).toBe(why);
    });
  }
});

describe('disassembleAll', () => {
  it('lists every whole instruction with its guest address', () => {
    const r = assemble('.org 0x7c00\nstart: mov eax, 1\njmp start\n.byte 1, 2, 3');
    const lines = disassembleAll(r.bytes, r.origin).map((l) => [
      l.address,
      Buffer.from(l.bytes).toString('hex'),
      l.text,
    ]);
    expect(lines).toEqual([
      [0x7c00, '1100000001000000', 'mov eax, 0x1'],
      [0x7c08, '50000000007c0000', 'jmp 0x7c00'],
    ]);
  });
});
