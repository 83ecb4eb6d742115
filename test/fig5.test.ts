/**
 * The machine's disk laid out as Fig. 5 (BOOT-15, BOOT-16, VMM-8): installation writes two tinyos
 * VEs into the VMM data area of the real partition (one on an encrypted partition), the DTM spool
 * is a file there; at start-up the VM manager creates both VEs from the disk alone and they run
 * as tinyos runs bare; each VE's NVRAM image lives in the real partition.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createVesFromDisk,
  Dtm,
  encryptedPartition,
  fileBlockBackend,
  formatDisk,
  formatRealFs,
  generateDataKey,
  installMachineKey,
  installVe,
  memoryNvramBackend,
  openBlockSpool,
  partitionOf,
  REAL_FILES,
  SECTOR_SIZE,
  Vmm,
  veFiles,
  wrapDataKey,
} from '@clefnet/emulator';
import { generateTriple, type Name, nodeBackend, seededRandom } from '@clefnet/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTinyOs, TINYOS_DIR } from '../guests/build.js';

const dir = mkdtempSync(join(tmpdir(), 'clefnet-fig5-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { rom, disk: tinyDisk } = buildTinyOs();
const SECTORS = tinyDisk.length / SECTOR_SIZE;
const random = seededRandom('fig5');
const MACHINE = generateTriple(nodeBackend, random, 'anc1.machines.example' as Name);
const EXPECTED = readFileSync(new URL('expected.txt', TINYOS_DIR), 'utf8');

describe('the Fig. 5 disk', () => {
  it('installs two VEs into the VMM data area and starts them from the disk alone', () => {
    const path = join(dir, 'machine.img');
    const disk = fileBlockBackend(path, 64 + 1024 + 64 + 2 * SECTORS);
    const layout = formatDisk(disk, [
      { name: 'real', kind: 'real', start: 1, count: 1023 },
      { name: 'fw', kind: 'firewall', start: 1024, count: 64 },
      { name: 've-a', kind: 've', start: 1088, count: SECTORS },
      { name: 've-b', kind: 've', start: 1088 + SECTORS, count: SECTORS },
    ]);
    const fs = formatRealFs(partitionOf(disk, layout, 'real'));
    fs.create(REAL_FILES.spool, 128);
    // ve-a: plain; ve-b: encrypted under a data key wrapped to the machine's public key.
    partitionOf(disk, layout, 've-a').write(0, tinyDisk);
    const dataKey = generateDataKey(random);
    encryptedPartition(partitionOf(disk, layout, 've-b'), dataKey, nodeBackend).write(0, tinyDisk);
    const profile = {
      memory_bytes: 1 << 20,
      boot_rom_image: 'rom.bin',
      nvram_image: 'nvram.bin',
      sdt_policy: 'P2',
    };
    const nvram = new Uint8Array(256);
    nvram.set(new TextEncoder().encode('ve a nvram'), 0x10);
    installVe(disk, {
      name: 'a',
      rom,
      nvram,
      profile: { ...profile, disk: { device: 've-a', protected_blocks: [0] } },
    });
    installVe(disk, {
      name: 'b',
      rom,
      profile: { ...profile, disk: { device: 've-b' }, encryption: { key_file: 'diskkey' } },
      diskKey: wrapDataKey(dataKey, {
        backend: nodeBackend,
        random,
        partition: 'b',
        scheme: 'machine',
        machine: MACHINE.clef,
      }),
    });
    disk.close();

    // Start-up, from the disk alone (and the machine key in NVRAM).
    const again = fileBlockBackend(path);
    const vmm = new Vmm({
      clock: () => Date.UTC(2026, 0, 1),
      ramBytes: 16 << 20,
      nvram: memoryNvramBackend(installMachineKey(new Uint8Array(256), MACHINE.name, MACHINE.key)),
    });
    vmm.bootMachineKey(nodeBackend);
    const boot = createVesFromDisk(vmm, again);
    expect(boot.ves.map((v) => v.name)).toEqual(['a', 'b']);
    const dtm = new Dtm({
      name: 'hub',
      id: 1,
      core: vmm.core,
      spool: openBlockSpool(boot.spool!),
      clock: () => 0,
    });
    expect(dtm.transfers()).toEqual([]);
    for (const ve of boot.ves) {
      expect(vmm.run(ve.id, 2_000_000).reason).toBe('halt');
      expect(ve.vm.console.transcript()).toBe(EXPECTED);
    }
    // The encrypted partition holds no plaintext sector of the kernel; the plain one does.
    const sector = tinyDisk.subarray(SECTOR_SIZE, 2 * SECTOR_SIZE);
    const read = (name: string) => {
      const p = partitionOf(again, boot.layout, name);
      const out = new Uint8Array(SECTOR_SIZE);
      p.read(1, out);
      return out;
    };
    expect(read('ve-a')).toEqual(sector);
    expect(read('ve-b')).not.toEqual(sector);
    // Each VE's NVRAM image is a file of its folder in the real partition: VE a sees its own.
    expect(boot.fs.read(veFiles('a').nvram)).toEqual(nvram);
    const a = boot.ves[0]!;
    a.vm.io.write(0x70, 0x10);
    const seen = Array.from({ length: 10 }, () => a.vm.io.read(0x72));
    expect(String.fromCharCode(...seen)).toBe('ve a nvram');
    again.close();
  });

  it('another machine cannot start the encrypted VE', () => {
    const path = join(dir, 'machine.img');
    const other = generateTriple(nodeBackend, random, 'anc2.machines.example' as Name);
    const vmm = new Vmm({
      clock: () => 0,
      ramBytes: 16 << 20,
      nvram: memoryNvramBackend(installMachineKey(new Uint8Array(256), other.name, other.key)),
    });
    vmm.bootMachineKey(nodeBackend);
    const disk = fileBlockBackend(path);
    expect(() => createVesFromDisk(vmm, disk)).toThrow(expect.objectContaining({ code: 'DISK_KEY_REFUSED' }));
    disk.close();
  });
});
