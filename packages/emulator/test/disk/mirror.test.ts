import { describe, expect, it } from 'vitest';
import { BLOCK_BACKEND_CASES } from '../../src/devices/backend-suite.js';
import { type BlockBackend, memoryBlockBackend, SECTOR_SIZE } from '../../src/devices/disk.js';
import { type MirrorFault, mirrored } from '../../src/disk/mirror.js';
import { pattern, readSectors, vmmErrorOf } from './helpers.js';

/** A memory device that fails reads and/or writes on demand, counting the calls that reach it. */
function flaky(sectors: number) {
  const mem = memoryBlockBackend(sectors);
  const state = { failReads: false, failWrites: false, calls: 0 };
  const dev: BlockBackend = {
    sectors,
    read(lba, out) {
      state.calls++;
      if (state.failReads) throw new Error('media error (read)');
      mem.read(lba, out);
    },
    write(lba, data) {
      state.calls++;
      if (state.failWrites) throw new Error('media error (write)');
      mem.write(lba, data);
    },
  };
  return { dev, mem, state };
}

function setup() {
  const p = flaky(16);
  const s = flaky(16);
  const faults: MirrorFault[] = [];
  const m = mirrored(p.dev, s.dev, (f) => faults.push(f));
  return { p, s, m, faults };
}

describe('mirror (DEV-12, TB-9)', () => {
  it('every write lands on both members', () => {
    const { p, s, m, faults } = setup();
    const data = pattern(3 * SECTOR_SIZE, 1);
    m.write(5, data);
    expect(readSectors(p.mem, 5, 3)).toEqual(data);
    expect(readSectors(s.mem, 5, 3)).toEqual(data);
    expect(p.mem.bytes).toEqual(s.mem.bytes);
    expect(faults).toEqual([]);
    expect(m.failed()).toEqual([]);
  });

  it('a read is served by the primary while it works', () => {
    const { s, m } = setup();
    m.write(0, pattern(SECTOR_SIZE, 2));
    s.mem.write(0, new Uint8Array(SECTOR_SIZE)); // the secondary would give zeros
    expect(readSectors(m, 0)).toEqual(pattern(SECTOR_SIZE, 2));
  });

  it('a read falls back to the secondary when the primary throws, and reports it', () => {
    const { p, m, faults } = setup();
    m.write(2, pattern(2 * SECTOR_SIZE, 3));
    p.state.failReads = true;
    expect(readSectors(m, 2, 2)).toEqual(pattern(2 * SECTOR_SIZE, 3));
    expect(faults).toEqual([
      {
        member: 'primary',
        op: 'read',
        lba: 2,
        count: 2,
        error: new Error('media error (read)'),
        failed: false,
      },
    ]);
    expect(m.failed()).toEqual([]); // a read error does not retire the primary
    p.state.failReads = false;
    expect(readSectors(m, 2, 2)).toEqual(pattern(2 * SECTOR_SIZE, 3));
    expect(faults).toHaveLength(1);
  });

  it('a member whose write fails is retired: later reads and writes use the other one only', () => {
    const { p, s, m, faults } = setup();
    p.state.failWrites = true;
    m.write(1, pattern(SECTOR_SIZE, 4));
    expect(faults.map((f) => [f.member, f.op, f.lba, f.count, f.failed])).toEqual([
      ['primary', 'write', 1, 1, true],
    ]);
    expect(m.failed()).toEqual(['primary']);
    p.state.failWrites = false;
    const callsBefore = p.state.calls;
    expect(readSectors(m, 1)).toEqual(pattern(SECTOR_SIZE, 4)); // from the secondary, not the stale primary
    m.write(2, pattern(SECTOR_SIZE, 5));
    expect(p.state.calls).toBe(callsBefore);
    expect(readSectors(s.mem, 2)).toEqual(pattern(SECTOR_SIZE, 5));
  });

  it('when no member can serve an access, the last error is thrown', () => {
    const { p, s, m } = setup();
    p.state.failReads = true;
    s.state.failReads = true;
    expect(() => readSectors(m, 0)).toThrow('media error (read)');
    p.state.failWrites = true;
    s.state.failWrites = true;
    expect(() => m.write(0, new Uint8Array(SECTOR_SIZE))).toThrow('media error (write)');
    expect(m.failed()).toEqual(['primary', 'secondary']);
    expect(vmmErrorOf(() => m.write(0, new Uint8Array(SECTOR_SIZE))).code).toBe('BAD_STATE');
    expect(vmmErrorOf(() => readSectors(m, 0)).code).toBe('BAD_STATE');
  });

  it('an access outside the disk is a RangeError before either member is touched', () => {
    const { p, s, m, faults } = setup();
    expect(() => m.read(16, new Uint8Array(SECTOR_SIZE))).toThrow(RangeError);
    expect(() => m.write(15, new Uint8Array(2 * SECTOR_SIZE))).toThrow(RangeError);
    expect(() => m.write(0, new Uint8Array(10))).toThrow(RangeError);
    expect([p.state.calls, s.state.calls, faults.length]).toEqual([0, 0, 0]);
  });

  it('members of different sizes, or one device twice, are CONFIG_INVALID', () => {
    expect(vmmErrorOf(() => mirrored(memoryBlockBackend(8), memoryBlockBackend(9)))).toEqual({
      code: 'CONFIG_INVALID',
      meta: { primary: 8, secondary: 9 },
    });
    const d = memoryBlockBackend(8);
    expect(vmmErrorOf(() => mirrored(d, d)).code).toBe('CONFIG_INVALID');
  });
});

describe('BlockBackend compliance: mirrored', () => {
  for (const c of BLOCK_BACKEND_CASES) {
    it(c.name, () => c.run((n) => mirrored(memoryBlockBackend(n), memoryBlockBackend(n))));
  }
});
