/**
 * Transparent disk encryption and mirroring under the VM manager (claim 30, CRYPT-1..4, CRYPT-9,
 * TB-9, TB-10, DEV-12): tinyos, unchanged, boots and runs from an encrypted (and mirrored)
 * partition of the machine's disk exactly as from a plain one; the disk holds no plaintext; another
 * machine cannot unwrap the key.
 */
import {
  describeDataKey,
  encryptedPartition,
  generateDataKey,
  installMachineKey,
  memoryBlockBackend,
  memoryNvramBackend,
  SECTOR_SIZE,
  Vmm,
  wrapDataKey,
} from '@clefnet/emulator';
import { generateTriple, type Name, nodeBackend, seededRandom } from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { buildTinyOs } from '../guests/build.js';

const CLOCK = Date.UTC(2026, 0, 1);
const { rom, disk } = buildTinyOs();
const SECTORS = disk.length / SECTOR_SIZE;
const random = seededRandom('disk-crypt-test');
const MACHINE = generateTriple(nodeBackend, random, 'anc1.machines.example' as Name);
const OTHER = generateTriple(nodeBackend, random, 'anc2.machines.example' as Name);

function holds(hay: Uint8Array, needle: Uint8Array): boolean {
  for (let i = hay.indexOf(needle[0]!); i >= 0; i = hay.indexOf(needle[0]!, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return true;
  }
  return false;
}

/** A physical disk with tinyos at sector 100 (plain) or written through the encrypted view. */
function provision(encrypt: { scheme: 'machine' } | { scheme: 'two-level'; passphrase: string } | undefined) {
  const phys = memoryBlockBackend(100 + 2 * SECTORS + 10);
  let header: Uint8Array | undefined;
  if (encrypt === undefined) {
    phys.write(100, disk);
    phys.write(100 + SECTORS, disk); // the mirror
  } else {
    const dataKey = generateDataKey(random);
    header =
      encrypt.scheme === 'machine'
        ? wrapDataKey(dataKey, {
            backend: nodeBackend,
            random,
            partition: 've-a',
            scheme: 'machine',
            machine: MACHINE.clef,
          })
        : wrapDataKey(dataKey, {
            backend: nodeBackend,
            random,
            partition: 've-a',
            scheme: 'two-level',
            machine: MACHINE.key,
            passphrase: encrypt.passphrase,
            iterations: 1000,
          });
    // Installation writes the partition (and its mirror) through the encrypted view.
    for (const start of [100, 100 + SECTORS]) {
      const view = encryptedPartition(
        {
          sectors: SECTORS,
          read: (l, o) => phys.read(start + l, o),
          write: (l, d) => phys.write(start + l, d),
        },
        dataKey,
        nodeBackend,
      );
      view.write(0, disk);
    }
  }
  return { phys, header };
}

function boot(
  phys: ReturnType<typeof memoryBlockBackend>,
  machine = MACHINE,
  enc?: { header: Uint8Array; passphrase?: string },
) {
  const vmm = new Vmm({
    clock: () => CLOCK,
    disk: phys,
    nvram: memoryNvramBackend(installMachineKey(new Uint8Array(256), machine.name, machine.key)),
  });
  vmm.bootMachineKey(nodeBackend);
  const ve = vmm.createVe({
    name: 've-a',
    memoryBytes: 1 << 20,
    rom,
    disk: { start: 100, count: SECTORS, mirror: { start: 100 + SECTORS, count: SECTORS } },
    ...(enc === undefined ? {} : { encryption: { ...enc, partition: 've-a' } }),
  });
  const r = vmm.run(ve.id, 300_000);
  return { r, transcript: ve.vm.console.transcript() };
}

describe('transparent disk encryption (claim 30)', () => {
  const plain = boot(provision(undefined).phys);

  it('tinyos runs from an encrypted, mirrored partition exactly as from a plain one', () => {
    expect(plain.transcript).toContain('tinyos ROM: reset at 0xFFFFFFF0');
    for (const scheme of [
      { scheme: 'machine' as const },
      { scheme: 'two-level' as const, passphrase: 'correct horse' },
    ]) {
      const { phys, header } = provision(scheme);
      // The disk holds no plaintext: the kernel's first 64 bytes appear nowhere on it.
      expect(holds(phys.bytes, disk.subarray(SECTOR_SIZE, SECTOR_SIZE + 64))).toBe(false);
      expect(describeDataKey(header!).scheme).toBe(scheme.scheme);
      const enc = boot(phys, MACHINE, {
        header: header!,
        ...(scheme.scheme === 'two-level' ? { passphrase: scheme.passphrase } : {}),
      });
      expect(enc.transcript).toBe(plain.transcript);
      expect(enc.r).toEqual(plain.r);
    }
  });

  it('the same disk on another machine, or without the passphrase, is refused: DISK_KEY_REFUSED', () => {
    const m = provision({ scheme: 'machine' });
    expect(() => boot(m.phys, OTHER, { header: m.header! })).toThrow(
      expect.objectContaining({ code: 'DISK_KEY_REFUSED' }),
    );
    const t = provision({ scheme: 'two-level', passphrase: 'correct horse' });
    expect(() => boot(t.phys, MACHINE, { header: t.header! })).toThrow(
      expect.objectContaining({ code: 'DISK_KEY_REFUSED' }),
    );
    expect(() => boot(t.phys, MACHINE, { header: t.header!, passphrase: 'wrong' })).toThrow(
      expect.objectContaining({ code: 'DISK_KEY_REFUSED' }),
    );
  });

  it('without its key the partition reads as noise: booted plain, the ROM finds no kernel', () => {
    const m = provision({ scheme: 'machine' });
    const noise = boot(m.phys);
    expect(noise.transcript).toContain('tinyos ROM: no bootable kernel (bad boot header)');
  });

  it('mirroring: with the primary region destroyed, tinyos still boots from the mirror', () => {
    const { phys } = provision(undefined);
    const failing = {
      sectors: phys.sectors,
      read(lba: number, out: Uint8Array) {
        if (lba >= 100 && lba < 100 + SECTORS) throw new RangeError('primary copy unreadable');
        phys.read(lba, out);
      },
      write: (lba: number, d: Uint8Array) => phys.write(lba, d),
    };
    const vmm = new Vmm({ clock: () => CLOCK, disk: failing });
    const ve = vmm.createVe({
      name: 've-a',
      memoryBytes: 1 << 20,
      rom,
      disk: { start: 100, count: SECTORS, mirror: { start: 100 + SECTORS, count: SECTORS } },
    });
    const r = vmm.run(ve.id, 300_000);
    expect(ve.vm.console.transcript()).toBe(plain.transcript);
    expect(r).toEqual(plain.r);
  });
});
