import {
  type CryptoBackend,
  FieldReader,
  type Key,
  nobleBackend,
  nodeBackend,
  seededRandom,
  toHex,
  u64,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { BLOCK_BACKEND_CASES } from '../../src/devices/backend-suite.js';
import { DISK_COMMAND, DISK_PORT, Disk, memoryBlockBackend, SECTOR_SIZE } from '../../src/devices/disk.js';
import { arrayDma } from '../../src/devices/dma.js';
import {
  DATA_KEY_BYTES,
  describeDataKey,
  encryptedPartition,
  generateDataKey,
  unwrapDataKey,
  type WrapOptions,
  wrapDataKey,
} from '../../src/disk/crypt.js';
import { formatDisk, partitionOf } from '../../src/disk/layout.js';
import { formatRealFs, openRealFs, veFiles } from '../../src/disk/realfs.js';
import {
  contains,
  machine,
  pattern,
  readSectors,
  recognisable,
  sparseBackend,
  vmmErrorOf,
} from './helpers.js';

const backend = nodeBackend;
const ITER = 1000; // the minimum: keeps the two-level cases fast

const tweakOf = (b: number) => {
  const t = new Uint8Array(16);
  const v = new DataView(t.buffer);
  v.setUint32(0, b >>> 0, true);
  v.setUint32(4, Math.floor(b / 2 ** 32), true);
  return t;
};

/** An encrypted view over a fresh device that reads zeros (written through the view first). */
function freshEncrypted(n: number, key: Uint8Array, b: CryptoBackend = backend) {
  const raw = memoryBlockBackend(n);
  const view = encryptedPartition(raw, key, b);
  view.write(0, new Uint8Array(n * SECTOR_SIZE));
  return { raw, view };
}

describe('data keys', () => {
  it('generateDataKey: 64 bytes from the random source, drawn again when the halves are equal', () => {
    const equal = new Uint8Array(64);
    const good = pattern(64, 1);
    const draws = [equal, good];
    const key = generateDataKey(() => draws.shift()!.slice());
    expect(key).toEqual(good);
    expect(generateDataKey(seededRandom('k'))).toHaveLength(DATA_KEY_BYTES);
    expect(vmmErrorOf(() => generateDataKey((n) => new Uint8Array(n))).code).toBe('CONFIG_INVALID');
  });

  it('encryptedPartition refuses a key of the wrong length or with equal halves (CONFIG_INVALID)', () => {
    const raw = memoryBlockBackend(4);
    const same = new Uint8Array(64).fill(7);
    for (const key of [new Uint8Array(63), new Uint8Array(65), same, new Uint8Array(64)]) {
      expect(vmmErrorOf(() => encryptedPartition(raw, key, backend)).code, `${key.length}`).toBe(
        'CONFIG_INVALID',
      );
    }
  });
});

describe('encrypted partition (CRYPT-1, CRYPT-4, TB-10)', () => {
  const key = generateDataKey(seededRandom('data key'));

  it('puts no plaintext on the raw device and reads the plaintext back', () => {
    const { raw, view } = freshEncrypted(16, key);
    const plain = recognisable('secret');
    view.write(5, plain);
    expect(contains(raw.bytes, plain)).toBe(false);
    for (let at = 0; at < SECTOR_SIZE; at += 16) {
      expect(contains(raw.bytes, plain.subarray(at, at + 16)), `16 bytes at ${at}`).toBe(false);
    }
    expect(readSectors(view, 5)).toEqual(plain);
  });

  it('sector b is XTS-AES-256 of one 512-byte unit with tweak b little-endian', () => {
    const raw = sparseBackend(2 ** 33);
    const view = encryptedPartition(raw, key, backend);
    const plain = recognisable('tweak');
    for (const b of [0, 3, 2 ** 32 + 5]) {
      view.write(b, plain);
      expect(raw.written.get(b), `block ${b}`).toEqual(backend.aes256XtsEncrypt(key, tweakOf(b), plain));
    }
    expect([...tweakOf(2 ** 32 + 5)]).toEqual([5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('the same sector content at two block numbers gives different ciphertext', () => {
    const { raw, view } = freshEncrypted(8, key);
    const plain = recognisable('twice');
    view.write(1, plain);
    view.write(6, plain);
    expect(readSectors(raw, 1)).not.toEqual(readSectors(raw, 6));
    expect(readSectors(view, 6)).toEqual(plain);
  });

  it('a multi-sector access equals the same sectors one by one; scratch reuse never leaks between calls', () => {
    const { raw, view } = freshEncrypted(40, key);
    const big = pattern(32 * SECTOR_SIZE, 3);
    view.write(4, big);
    const one = freshEncrypted(40, key);
    for (let i = 0; i < 32; i++) one.view.write(4 + i, big.subarray(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE));
    expect(raw.bytes).toEqual(one.raw.bytes);
    view.write(0, pattern(SECTOR_SIZE, 4)); // a short write after a long one
    expect(readSectors(view, 0)).toEqual(pattern(SECTOR_SIZE, 4));
    expect(readSectors(view, 4, 32)).toEqual(big);
  });

  it('a multi-sector access is one XTS unit per sector: equal to aes256XtsEncrypt / Decrypt sector by sector (both backends)', () => {
    for (const be of [nodeBackend, nobleBackend]) {
      const raw = sparseBackend(2 ** 33);
      const view = encryptedPartition(raw, key, be);
      for (const [lba, n] of [
        [0, 1],
        [7, 8],
        [2 ** 32 - 3, 8], // the tweak's low word wraps inside the access
        [2 ** 33 - 129, 129], // the last sectors of the device, more than one backend step
      ] as const) {
        const id = `${be.name}: ${n} sectors at ${lba}`;
        const plain = pattern(n * SECTOR_SIZE, lba % 251);
        // Written through a view of a larger buffer at an odd offset, as a DMA window may be.
        const window = new Uint8Array(plain.length + 3);
        window.set(plain, 3);
        view.write(lba, window.subarray(3));
        for (let i = 0; i < n; i++) {
          const sector = plain.subarray(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE);
          expect(toHex(raw.written.get(lba + i)!), `${id}, sector ${i}`).toBe(
            toHex(be.aes256XtsEncrypt(key, tweakOf(lba + i), sector)),
          );
        }
        const back = new Uint8Array(plain.length + 1);
        view.read(lba, back.subarray(1));
        expect(toHex(back.subarray(1)), id).toBe(toHex(plain));
        expect(back[0], id).toBe(0);
        // Reading ciphertext that was never written by the view: each sector decrypted on its own.
        const junk = pattern(n * SECTOR_SIZE, 77);
        raw.write(lba, junk);
        const seen = readSectors(view, lba, n);
        for (let i = 0; i < n; i++) {
          const at = i * SECTOR_SIZE;
          expect(toHex(seen.subarray(at, at + SECTOR_SIZE)), `${id}, read sector ${i}`).toBe(
            toHex(be.aes256XtsDecrypt(key, tweakOf(lba + i), junk.subarray(at, at + SECTOR_SIZE))),
          );
        }
      }
    }
  });

  it('the node and noble backends give identical ciphertext', () => {
    const node = freshEncrypted(12, key, nodeBackend);
    const noble = freshEncrypted(12, key, nobleBackend);
    const data = pattern(10 * SECTOR_SIZE, 5);
    node.view.write(1, data);
    noble.view.write(1, data);
    expect(toHex(node.raw.bytes)).toBe(toHex(noble.raw.bytes));
    expect(readSectors(noble.view, 1, 10)).toEqual(data);
  });

  it('a refused access (out of range, not whole sectors) touches nothing', () => {
    const { raw, view } = freshEncrypted(4, key);
    const before = raw.bytes.slice();
    for (const [lba, len] of [
      [4, 512],
      [3, 1024],
      [-1, 512],
      [0, 100],
      [0, 0],
    ] as const) {
      expect(() => view.write(lba, new Uint8Array(len)), `${lba}+${len}`).toThrow(RangeError);
      expect(() => view.read(lba, new Uint8Array(len)), `${lba}+${len}`).toThrow(RangeError);
    }
    expect(raw.bytes).toEqual(before);
  });

  it('the guest sees plaintext through the disk controller (CRYPT-4)', () => {
    const { raw, view } = freshEncrypted(16, key);
    const mem = new Uint8Array(0x4000);
    const disk = new Disk({ backend: view, dma: arrayDma(mem), latency: 0 });
    const plain = recognisable('guest');
    mem.set(plain, 0x1000);
    const command = (c: number, lba: number) => {
      disk.write(disk.base + DISK_PORT.LBA, lba);
      disk.write(disk.base + DISK_PORT.COUNT, 1);
      disk.write(disk.base + DISK_PORT.ADDR, 0x1000);
      disk.write(disk.base + DISK_PORT.COMMAND, c);
      return disk.read(disk.base + DISK_PORT.STATUS);
    };
    expect(command(DISK_COMMAND.WRITE, 9)).toBe(0);
    mem.fill(0, 0x1000, 0x1200);
    expect(contains(raw.bytes, plain)).toBe(false);
    expect(command(DISK_COMMAND.READ, 9)).toBe(0);
    expect(mem.subarray(0x1000, 0x1200)).toEqual(plain);
  });
});

describe('BlockBackend compliance: encryptedPartition', () => {
  const key = generateDataKey(seededRandom('suite'));
  for (const c of BLOCK_BACKEND_CASES) it(c.name, () => c.run((n) => freshEncrypted(n, key).view));
});

describe('key wrapping (CRYPT-2, CRYPT-3, CRYPT-9, claim 30)', () => {
  const a = machine(backend, seededRandom('machine A'));
  const b = machine(backend, seededRandom('machine B'));
  const dataKey = generateDataKey(seededRandom('the data key'));
  const machineWrap = (random = seededRandom('wrap')) =>
    wrapDataKey(dataKey, { backend, random, partition: 've.desk', scheme: 'machine', machine: a.clef });
  const twoLevel = (passphrase: string | Uint8Array = 'correct horse', who: Key = a.key) =>
    wrapDataKey(dataKey, {
      backend,
      random: seededRandom('wrap2'),
      partition: 've.desk',
      scheme: 'two-level',
      machine: who,
      passphrase,
      iterations: ITER,
    });

  it('a stolen disk: written on machine A, unreadable on machine B (the whole flow of Fig. 5 and 11A)', () => {
    const disk = memoryBlockBackend(200);
    const layout = formatDisk(disk, [
      { name: 'real', kind: 'real', start: 1, count: 63 },
      { name: 've.desk', kind: 've', start: 64, count: 136 },
    ]);
    const fs = formatRealFs(partitionOf(disk, layout, 'real'));
    const header = machineWrap(seededRandom('install'));
    fs.create(veFiles('desk').diskKey, 1);
    fs.write(veFiles('desk').diskKey, header);
    const ve = encryptedPartition(partitionOf(disk, layout, 've.desk'), dataKey, backend);
    const plain = recognisable('stolen');
    ve.write(17, plain);
    expect(contains(disk.bytes, plain)).toBe(false);

    // Machine A after a restart: the key comes back from 104d.
    const stored = openRealFs(partitionOf(disk, layout, 'real')).read(veFiles('desk').diskKey);
    const k = unwrapDataKey(stored, a.key, { backend, partition: 've.desk' });
    expect(k).toEqual(dataKey);
    expect(readSectors(encryptedPartition(partitionOf(disk, layout, 've.desk'), k, backend), 17)).toEqual(
      plain,
    );

    // Machine B: the key does not unwrap, and a guessed data key reads noise.
    expect(vmmErrorOf(() => unwrapDataKey(stored, b.key, { backend }))).toEqual({
      code: 'DISK_KEY_REFUSED',
      meta: { reason: 'other-machine' },
    });
    const other = generateDataKey(seededRandom('a guess'));
    const seen = readSectors(encryptedPartition(partitionOf(disk, layout, 've.desk'), other, backend), 17);
    expect(seen).not.toEqual(plain);
    expect(contains(seen, plain.subarray(0, 16))).toBe(false);
  });

  it('a machine header names its fields as the file comment says', () => {
    const h = machineWrap();
    const r = new FieldReader(h);
    const text = (n: number) => new TextDecoder().decode(r.bytesField(n, 'f'));
    expect([text(4), [...r.bytesField(1, 'v')], text(16), text(32), text(64)]).toEqual([
      'CLDK',
      [1],
      'machine',
      'xts-aes-256',
      've.desk',
    ]);
    expect(r.bytesField(32, 'machine')).toEqual(a.clef.seal);
    expect(r.bytesField(32, 'enc')).toHaveLength(32);
    expect(r.bytesField(80, 'sealed')).toHaveLength(80);
    r.end();
    expect(describeDataKey(h)).toEqual({
      scheme: 'machine',
      cipher: 'xts-aes-256',
      partition: 've.desk',
      machine: a.clef.seal,
    });
    expect(describeDataKey(twoLevel())).toEqual({
      scheme: 'two-level',
      cipher: 'xts-aes-256',
      partition: 've.desk',
      machine: a.clef.seal,
      iterations: ITER,
    });
  });

  it('both backends make the same header from the same random source, and each unwraps the other', () => {
    const spec = (be: CryptoBackend, scheme: 'machine' | 'two-level'): WrapOptions =>
      scheme === 'machine'
        ? { backend: be, random: seededRandom('same'), partition: 'p', scheme, machine: a.clef }
        : {
            backend: be,
            random: seededRandom('same'),
            partition: 'p',
            scheme,
            machine: a.key,
            passphrase: 'pw',
            iterations: ITER,
          };
    for (const scheme of ['machine', 'two-level'] as const) {
      const node = wrapDataKey(dataKey, spec(nodeBackend, scheme));
      const noble = wrapDataKey(dataKey, spec(nobleBackend, scheme));
      expect(toHex(node), scheme).toBe(toHex(noble));
      expect(unwrapDataKey(node, a.key, { backend: nobleBackend, passphrase: 'pw' }), scheme).toEqual(
        dataKey,
      );
    }
  });

  it('two-level: the right machine and passphrase unwrap; anything else is DISK_KEY_REFUSED', () => {
    const h = twoLevel();
    expect(unwrapDataKey(h, a.key, { backend, passphrase: 'correct horse' })).toEqual(dataKey);
    expect(
      unwrapDataKey(h, a.key, { backend, passphrase: new TextEncoder().encode('correct horse') }),
    ).toEqual(dataKey);
    const cases: [string, Key, string | undefined, string][] = [
      ['a wrong passphrase', a.key, 'correct horse!', 'refused'],
      ['an empty passphrase', a.key, '', 'refused'],
      ['no passphrase', a.key, undefined, 'passphrase-required'],
      ["another machine's key", b.key, 'correct horse', 'other-machine'],
    ];
    for (const [what, key, passphrase, reason] of cases) {
      expect(
        vmmErrorOf(() =>
          unwrapDataKey(h, key, { backend, ...(passphrase === undefined ? {} : { passphrase }) }),
        ),
        what,
      ).toEqual({ code: 'DISK_KEY_REFUSED', meta: { reason } });
    }
  });

  it('two-level: another machine with the right passphrase, its public key patched into the header, is refused', () => {
    const h = twoLevel();
    const patched = h.slice();
    const at = findBytes(patched, a.clef.seal);
    patched.set(b.clef.seal, at);
    expect(vmmErrorOf(() => unwrapDataKey(patched, b.key, { backend, passphrase: 'correct horse' }))).toEqual(
      {
        code: 'DISK_KEY_REFUSED',
        meta: { reason: 'refused' },
      },
    );
  });

  it('a passphrase is taken in Unicode NFC: composed and decomposed forms are the same passphrase', () => {
    const h = twoLevel('caf\u00e9');
    expect(unwrapDataKey(h, a.key, { backend, passphrase: 'cafe\u0301' })).toEqual(dataKey);
  });

  it('machine scheme: a passphrase is not needed and is ignored', () => {
    expect(unwrapDataKey(machineWrap(), a.key, { backend })).toEqual(dataKey);
    expect(unwrapDataKey(machineWrap(), a.key, { backend, passphrase: 'x' })).toEqual(dataKey);
  });

  it('a header made for another partition is refused when the partition is named', () => {
    expect(vmmErrorOf(() => unwrapDataKey(machineWrap(), a.key, { backend, partition: 've.other' }))).toEqual(
      {
        code: 'DISK_KEY_REFUSED',
        meta: { reason: 'partition' },
      },
    );
  });

  it('a damaged header is DISK_KEY_REFUSED, never a raw exception', () => {
    const m = machineWrap();
    const t = twoLevel();
    const flip = (h: Uint8Array, at: number) => {
      const c = h.slice();
      c[at]! ^= 1;
      return c;
    };
    const iterAt = findBytes(t, u64(ITER));
    const withIterations = (n: number) => {
      const c = t.slice();
      c.set(new Uint8Array([0, 0, 0, 0, 0, 0, n >>> 8, n & 0xff]), iterAt);
      return c;
    };
    const cases: [string, Uint8Array, Key, string | undefined, string][] = [
      ['empty', new Uint8Array(0), a.key, undefined, 'damaged'],
      ['garbage', pattern(200, 1), a.key, undefined, 'damaged'],
      ['truncated', m.subarray(0, m.length - 1), a.key, undefined, 'damaged'],
      ['a trailing byte', new Uint8Array([...m, 0]), a.key, undefined, 'damaged'],
      ['another magic', flip(m, 4), a.key, undefined, 'damaged'],
      ['version 0', flip(m, 12), a.key, undefined, 'damaged'],
      ['an unknown scheme', flip(m, 17), a.key, undefined, 'damaged'],
      [
        'a changed partition name (aad)',
        flip(m, findBytes(m, new TextEncoder().encode('ve.desk'))),
        a.key,
        undefined,
        'refused',
      ],
      ['a changed enc', flip(m, m.length - 84 - 10), a.key, undefined, 'refused'],
      ['a changed sealed key', flip(m, m.length - 1), a.key, undefined, 'refused'],
      ['two-level: a changed salt', flip(t, findBytes(t, u64(ITER)) - 8), a.key, 'correct horse', 'refused'],
      ['two-level: iterations 999', withIterations(999), a.key, 'correct horse', 'damaged'],
      ['two-level: changed iterations', withIterations(1001), a.key, 'correct horse', 'refused'],
      [
        'a malformed machine Key',
        m,
        { sign: new Uint8Array(32), open: new Uint8Array(31) },
        undefined,
        'other-machine',
      ],
    ];
    for (const [what, header, key, passphrase, reason] of cases) {
      expect(
        vmmErrorOf(() =>
          unwrapDataKey(header, key, { backend, ...(passphrase === undefined ? {} : { passphrase }) }),
        ),
        what,
      ).toEqual({ code: 'DISK_KEY_REFUSED', meta: { reason } });
    }
    expect(vmmErrorOf(() => describeDataKey(pattern(10, 1)))).toEqual({
      code: 'DISK_KEY_REFUSED',
      meta: { reason: 'damaged' },
    });
  });

  it('wrapDataKey refuses bad options with CONFIG_INVALID', () => {
    const base = { backend, random: seededRandom('w'), partition: 'p' };
    const bad: [string, Uint8Array, WrapOptions][] = [
      ['a short data key', new Uint8Array(63), { ...base, scheme: 'machine', machine: a.clef }],
      ['a data key with equal halves', new Uint8Array(64), { ...base, scheme: 'machine', machine: a.clef }],
      ['an empty partition name', dataKey, { ...base, partition: '', scheme: 'machine', machine: a.clef }],
      [
        'a 65-byte partition name',
        dataKey,
        { ...base, partition: 'p'.repeat(65), scheme: 'machine', machine: a.clef },
      ],
      ['no machine Clef', dataKey, { ...base, scheme: 'machine', machine: undefined as never }],
      [
        'two-level without the machine secret',
        dataKey,
        { ...base, scheme: 'two-level', machine: a.clef as never, passphrase: 'x', iterations: ITER },
      ],
      [
        'an empty passphrase',
        dataKey,
        { ...base, scheme: 'two-level', machine: a.key, passphrase: '', iterations: ITER },
      ],
      [
        '999 iterations',
        dataKey,
        { ...base, scheme: 'two-level', machine: a.key, passphrase: 'x', iterations: 999 },
      ],
      ['an unknown scheme', dataKey, { ...base, scheme: 'none' as never, machine: a.clef }],
    ];
    for (const [what, key, options] of bad) {
      expect(vmmErrorOf(() => wrapDataKey(key, options)).code, what).toBe('CONFIG_INVALID');
    }
  });
});

/** Offset of the first occurrence of `needle` in `hay` (fails the test when absent). */
function findBytes(hay: Uint8Array, needle: Uint8Array): number {
  const at = Buffer.from(hay).indexOf(Buffer.from(needle));
  expect(at).toBeGreaterThanOrEqual(0);
  return at;
}
