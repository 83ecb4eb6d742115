import { hpkeOpen, nobleBackend, nodeBackend, seededRandom } from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { BLOCK_BACKEND_CASES } from '../../src/devices/backend-suite.js';
import { memoryBlockBackend, SECTOR_SIZE } from '../../src/devices/disk.js';
import { LITERAL_INFO, literalPartition } from '../../src/disk/literal.js';
import { mirrored } from '../../src/disk/mirror.js';
import { contains, machine, pattern, readSectors, recognisable, vmmErrorOf } from './helpers.js';

const backend = nodeBackend;
const m = machine(backend, seededRandom('literal machine'));
const other = machine(backend, seededRandom('another machine'));
const owner = (dev: ReturnType<typeof memoryBlockBackend>, seed = 'owner') =>
  literalPartition(dev, { backend, random: seededRandom(seed), machine: m.key });

describe('literal mode (TB-10: claim 30 read literally)', () => {
  it('N physical sectors offer floor(N / 2) virtual ones; fewer than 2 is CONFIG_INVALID', () => {
    expect(owner(memoryBlockBackend(9)).sectors).toBe(4);
    expect(owner(memoryBlockBackend(2)).sectors).toBe(1);
    expect(vmmErrorOf(() => owner(memoryBlockBackend(1))).code).toBe('CONFIG_INVALID');
  });

  it('round trip; each sector is enc ‖ HPKE ciphertext to the machine key in two physical sectors', () => {
    const raw = memoryBlockBackend(16);
    const view = owner(raw);
    const data = new Uint8Array([...recognisable('literal-0'), ...recognisable('literal-1')]);
    view.write(2, data);
    expect(readSectors(view, 2, 2)).toEqual(data);
    expect(contains(raw.bytes, recognisable('literal-0'))).toBe(false);
    expect(contains(raw.bytes, recognisable('literal-0').subarray(0, 16))).toBe(false);
    const slot = readSectors(raw, 6, 2); // virtual sector 3
    expect(slot.subarray(560).every((b) => b === 0)).toBe(true);
    const opened = hpkeOpen(
      backend,
      m.key.open,
      slot.subarray(0, 32),
      LITERAL_INFO,
      new Uint8Array(0),
      slot.subarray(32, 560),
    );
    expect(opened).toEqual(recognisable('literal-1'));
    expect(readSectors(raw, 0, 4)).toEqual(new Uint8Array(4 * SECTOR_SIZE)); // virtual 0 and 1 untouched
  });

  it('the noble backend reads what the node backend wrote', () => {
    const raw = memoryBlockBackend(8);
    owner(raw).write(1, recognisable('cross'));
    const noble = literalPartition(raw, { backend: nobleBackend, random: seededRandom('n'), machine: m.key });
    expect(readSectors(noble, 1)).toEqual(recognisable('cross'));
  });

  it('THE WEAKNESS: a block forged with only the public key decrypts "validly" for the owner', () => {
    const raw = memoryBlockBackend(16);
    owner(raw).write(4, recognisable('genuine'));
    const forger = literalPartition(raw, { backend, random: seededRandom('forger'), machine: m.clef });
    forger.write(4, recognisable('forged by anyone'));
    expect(readSectors(owner(raw), 4)).toEqual(recognisable('forged by anyone'));
    // The forger cannot read, not even its own block.
    expect(vmmErrorOf(() => readSectors(forger, 4))).toEqual({ code: 'DISK_KEY_REFUSED', meta: { lba: 4 } });
  });

  it('THE WEAKNESS: blocks are position-independent: a copied ciphertext decrypts validly elsewhere', () => {
    const raw = memoryBlockBackend(16);
    const view = owner(raw);
    view.write(1, recognisable('moved'));
    raw.write(10, readSectors(raw, 2, 2)); // virtual 1 -> virtual 5
    expect(readSectors(view, 5)).toEqual(recognisable('moved'));
  });

  it('a damaged block, or one sealed to another machine, is DISK_KEY_REFUSED with its lba', () => {
    const raw = memoryBlockBackend(16);
    const view = owner(raw);
    view.write(0, pattern(4 * SECTOR_SIZE, 1));
    const s = readSectors(raw, 2);
    s[100]! ^= 1;
    raw.write(2, s);
    expect(vmmErrorOf(() => readSectors(view, 0, 3))).toEqual({ code: 'DISK_KEY_REFUSED', meta: { lba: 1 } });
    literalPartition(raw, { backend, random: seededRandom('o'), machine: other.clef }).write(
      3,
      pattern(SECTOR_SIZE, 2),
    );
    expect(vmmErrorOf(() => readSectors(view, 3))).toEqual({ code: 'DISK_KEY_REFUSED', meta: { lba: 3 } });
    expect(readSectors(view, 2)).toEqual(
      pattern(4 * SECTOR_SIZE, 1).subarray(2 * SECTOR_SIZE, 3 * SECTOR_SIZE),
    );
  });

  it('a mirror of two literal copies reads a damaged block from the secondary (DEV-12)', () => {
    const a = memoryBlockBackend(8);
    const b = memoryBlockBackend(8);
    const faults: string[] = [];
    const both = mirrored(owner(a, 'a'), owner(b, 'b'), (f) =>
      faults.push(`${f.member} ${f.op} ${f.lba}+${f.count}`),
    );
    both.write(0, recognisable('mirrored'));
    a.bytes[40]! ^= 1;
    expect(readSectors(both, 0)).toEqual(recognisable('mirrored'));
    expect(faults).toEqual(['primary read 0+1']);
  });
});

describe('BlockBackend compliance: literalPartition', () => {
  for (const c of BLOCK_BACKEND_CASES) it(c.name, () => c.run((n) => owner(memoryBlockBackend(2 * n))));
});
