/** CLFX images: golden header, round trips, and every corruption rejected with its code and reason. */
import { describe, expect, it } from 'vitest';
import { decodeImage, encodeImage, IMAGE_HEADER_BYTES, ImageError } from '../../src/asm/image.js';
import { crc32 } from '../../src/crc32.js';

const body = Uint8Array.from([0x11, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0]);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Rewrites header fields and re-seals both checksums, so only the field under test is wrong. */
function reseal(img: Uint8Array, edit: (v: DataView, img: Uint8Array) => void): Uint8Array {
  const out = img.slice();
  const v = new DataView(out.buffer);
  edit(v, out);
  v.setUint32(24, crc32(out.subarray(IMAGE_HEADER_BYTES)), true);
  v.setUint32(28, crc32(out.subarray(0, 28)), true);
  return out;
}

function rejection(data: Uint8Array): [string, string, string] {
  try {
    decodeImage(data);
  } catch (e) {
    if (e instanceof ImageError) return [e.code, e.reason, e.message];
    throw e;
  }
  return ['accepted', '', ''];
}

describe('crc32', () => {
  it('matches the IEEE check values', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(new TextEncoder().encode('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
  });
});

describe('encodeImage / decodeImage', () => {
  const good = encodeImage({ load: 0x1000, entry: 0x1008, bytes: body });

  it('writes the documented header', () => {
    expect(hex(good.subarray(0, 24))).toBe(
      '434c4658' + '0100' + '0000' + '00100000' + '08100000' + '10000000' + '00000000',
    );
    const v = new DataView(good.buffer);
    expect(v.getUint32(24, true)).toBe(crc32(body));
    expect(v.getUint32(28, true)).toBe(crc32(good.subarray(0, 28)));
    expect(hex(good.subarray(32))).toBe(hex(body));
  });

  it('round-trips without and with symbols', () => {
    expect(decodeImage(good)).toEqual({ load: 0x1000, entry: 0x1008, bytes: body, symbols: new Map() });
    const symbols = new Map([
      ['start', 0x1000],
      ['start.loop', 0x1008],
      ['ünï', 0xffffffff],
    ]);
    const img = encodeImage({ load: 0x1000, entry: 0x1000, bytes: body, symbols });
    expect(img.length).toBe(32 + 16 + 4 + (5 + 5) + (5 + 10) + (5 + 5));
    expect(decodeImage(img)).toEqual({ load: 0x1000, entry: 0x1000, bytes: body, symbols });
  });

  it('decodes from a view into a larger buffer and copies the body', () => {
    const big = new Uint8Array(good.length + 8);
    big.set(good, 4);
    const d = decodeImage(big.subarray(4, 4 + good.length));
    big.fill(0);
    expect(hex(d.bytes)).toBe(hex(body));
  });

  const withSyms = encodeImage({ load: 0, entry: 0, bytes: body, symbols: new Map([['a', 1]]) });
  const symAt = IMAGE_HEADER_BYTES + body.length;
  const CORRUPT: readonly [string, Uint8Array, string, string, string][] = [
    [
      'short header',
      good.subarray(0, 31),
      'ENCODING_TRUNCATED',
      'truncated',
      'bad image: 31 bytes is shorter than the header',
    ],
    [
      'cut body',
      good.subarray(0, good.length - 1),
      'ENCODING_TRUNCATED',
      'truncated',
      'bad image: the header declares 48 bytes, the image has 47',
    ],
    [
      'extra byte',
      Uint8Array.from([...good, 0]),
      'ENCODING_TRAILING',
      'trailing',
      'bad image: 1 bytes follow the declared end',
    ],
    [
      'magic',
      reseal(good, (_, b) => b.set([0x43, 0x4c, 0x46, 0x59])),
      'ENCODING_BAD_VALUE',
      'magic',
      'bad image: the magic is not "CLFX"',
    ],
    [
      'header bit flip',
      good.map((b, i) => (i === 9 ? b ^ 1 : b)),
      'ENCODING_BAD_VALUE',
      'header-checksum',
      'bad image: the header checksum does not match',
    ],
    [
      'version',
      reseal(good, (v) => v.setUint16(4, 2, true)),
      'ENCODING_BAD_VALUE',
      'version',
      'bad image: version 2 is not 1',
    ],
    [
      'flags',
      reseal(good, (v) => v.setUint16(6, 0x80, true)),
      'ENCODING_BAD_VALUE',
      'flags',
      'bad image: reserved flags 0x80 are set',
    ],
    [
      'body bit flip',
      good.map((b, i) => (i === 40 ? b ^ 0x80 : b)),
      'ENCODING_BAD_VALUE',
      'checksum',
      'bad image: the body checksum does not match',
    ],
    [
      'past 4 GiB',
      reseal(good, (v) => {
        v.setUint32(8, 0xfffffff8, true);
        v.setUint32(12, 0xfffffff8, true);
      }),
      'ENCODING_BAD_VALUE',
      'load',
      'bad image: the body runs past the end of the address space',
    ],
    [
      'entry after body',
      reseal(good, (v) => v.setUint32(12, 0x1010, true)),
      'ENCODING_BAD_VALUE',
      'entry',
      'bad image: entry 0x1010 is outside the body (0x1000..0x100f)',
    ],
    [
      'entry before body',
      reseal(good, (v) => v.setUint32(12, 0xfff, true)),
      'ENCODING_BAD_VALUE',
      'entry',
      'bad image: entry 0xfff is outside the body (0x1000..0x100f)',
    ],
    [
      'symbol count',
      reseal(withSyms, (v) => v.setUint32(symAt, 2, true)),
      'ENCODING_BAD_VALUE',
      'symbols',
      'bad image: symbol table: symbol 1 runs past the end',
    ],
    [
      'symbol name length 0',
      reseal(withSyms, (_, b) => b.set([0], symAt + 8)),
      'ENCODING_BAD_VALUE',
      'symbols',
      'bad image: symbol table: symbol 0 has a bad name length',
    ],
    [
      'symbol name not UTF-8',
      reseal(withSyms, (_, b) => b.set([0xff], symAt + 9)),
      'ENCODING_BAD_VALUE',
      'symbols',
      'bad image: symbol table: symbol 0 is not UTF-8',
    ],
    [
      'symbol table too short',
      reseal(withSyms.subarray(0, symAt + 2), (v) => v.setUint32(20, 2, true)),
      'ENCODING_BAD_VALUE',
      'symbols',
      'bad image: symbol table: shorter than its count',
    ],
    [
      'bytes after the last symbol',
      reseal(Uint8Array.from([...withSyms, 0]), (v) => v.setUint32(20, 11, true)),
      'ENCODING_BAD_VALUE',
      'symbols',
      'bad image: symbol table: 1 bytes follow the last symbol',
    ],
    [
      'duplicate symbol',
      reseal(Uint8Array.from([...withSyms, 1, 0, 0, 0, 1, 0x61]), (v) => {
        v.setUint32(20, 16, true);
        v.setUint32(symAt, 2, true);
      }),
      'ENCODING_BAD_VALUE',
      'symbols',
      "bad image: symbol table: symbol 'a' appears twice",
    ],
  ];
  for (const [name, data, code, reason, message] of CORRUPT) {
    it(`rejects: ${name}`, () => expect(rejection(data), name).toEqual([code, reason, message]));
  }

  it('refuses to encode bad fields with CONFIG_INVALID', () => {
    const cases: [string, () => unknown, string, string][] = [
      [
        'entry outside',
        () => encodeImage({ load: 0, entry: 16, bytes: body }),
        'entry',
        'bad image: entry 0x10 is outside the body (0x0..0xf)',
      ],
      [
        'empty body',
        () => encodeImage({ load: 0, entry: 0, bytes: new Uint8Array(0) }),
        'entry',
        'bad image: entry 0x0 is outside the body (empty)',
      ],
      [
        'load',
        () => encodeImage({ load: -1, entry: 0, bytes: body }),
        'load',
        'bad image: load address -1 is not a 32-bit address',
      ],
      [
        'symbol name',
        () => encodeImage({ load: 0, entry: 0, bytes: body, symbols: new Map([['', 1]]) }),
        'symbols',
        "bad image: symbol name '' is not 1..255 bytes",
      ],
      [
        'symbol value',
        () => encodeImage({ load: 0, entry: 0, bytes: body, symbols: new Map([['x', 2 ** 32]]) }),
        'symbols',
        "bad image: symbol 'x' = 4294967296 is not a 32-bit value",
      ],
    ];
    for (const [name, run, reason, message] of cases) {
      let e: unknown;
      try {
        run();
      } catch (x) {
        e = x;
      }
      expect(e, name).toBeInstanceOf(ImageError);
      expect([(e as ImageError).code, (e as ImageError).reason, (e as ImageError).message], name).toEqual([
        'CONFIG_INVALID',
        reason,
        message,
      ]);
    }
  });
});
