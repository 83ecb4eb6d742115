/**
 * The machine's disk as Fig. 5 lays it out, used by the VM manager: installation writes each VE's
 * configuration into the VMM data area of the real partition (BOOT-15, 104d: profile, boot ROM,
 * NVRAM image, wrapped disk key), and at start-up the VMM creates every VE from it (VMM-8, BOOT-5):
 * the profile is the TB-8 JSON document, its file names are files of the VE's folder
 * `ve/<name>/` in the real partition, and `disk.device` names the VE's partition (108).
 */
import type { BlockBackend } from '../devices/disk.js';
import { type DiskLayout, partitionOf, readLayout } from '../disk/layout.js';
import { openRealFs, REAL_FILES, type RealFs, realFsNvramBackend, veFiles } from '../disk/realfs.js';
import { VmmError } from './errors.js';
import { type ProfileFiles, parseProfile } from './profile.js';
import type { VirtualEnvironment } from './ve.js';
import type { Vmm } from './vmm.js';

/** The profile's files of VE `ve`: its folder in the real partition, and the disk's partitions. */
export function realFsProfileFiles(
  fs: RealFs,
  ve: string,
  disk: BlockBackend,
  layout: DiskLayout,
): ProfileFiles {
  const path = (name: string) => `ve/${ve}/${name}`;
  return {
    read: (name) => fs.read(path(name)),
    nvram: (name) => realFsNvramBackend(fs, path(name)),
    device: (name) => {
      const p = layout.partitions.find((q) => q.name === name);
      if (p === undefined || p.kind !== 've') throw new Error(`no VE partition ${name}`);
      return partitionOf(disk, layout, name);
    },
  };
}

export interface InstallVe {
  readonly name: string;
  /** The TB-8 profile document; its file names are those below (`rom.bin`, ...). */
  readonly profile: Record<string, unknown>;
  readonly rom: Uint8Array;
  readonly nvram?: Uint8Array;
  /** The wrapped data key of its partition (disk/crypt.ts), stored as `diskkey`. */
  readonly diskKey?: Uint8Array;
}

/** Installation (BOOT-15): writes a VE's configuration into the VMM data area of `disk`. */
export function installVe(disk: BlockBackend, ve: InstallVe): void {
  const layout = readLayout(disk);
  const fs = realFs(disk, layout);
  const f = veFiles(ve.name);
  const put = (name: string, bytes: Uint8Array) => {
    if (fs.stat(name) !== undefined) fs.remove(name);
    fs.create(name, Math.max(1, Math.ceil(bytes.length / 512)));
    fs.write(name, bytes);
  };
  put(f.profile, new TextEncoder().encode(JSON.stringify({ ...ve.profile, name: ve.name })));
  put(f.rom, ve.rom);
  if (ve.nvram !== undefined) put(f.nvram, ve.nvram);
  if (ve.diskKey !== undefined) put(f.diskKey, ve.diskKey);
}

export interface DiskBoot {
  readonly layout: DiskLayout;
  readonly fs: RealFs;
  /** The DTM spool area (104e), when the real partition has one. */
  readonly spool: BlockBackend | undefined;
  /** The firewall partition (106: the firewall spool), when there is one. */
  readonly firewall: BlockBackend | undefined;
  readonly ves: readonly VirtualEnvironment[];
}

/**
 * Start-up (VMM-8): every VE configured in the VMM data area of `disk`, in name order, created on
 * `vmm` (whose machine key must be booted first if any VE's disk is encrypted).
 */
export function createVesFromDisk(vmm: Vmm, disk: BlockBackend): DiskBoot {
  const layout = readLayout(disk);
  const fs = realFs(disk, layout);
  const names = fs
    .list()
    .map((f) => /^ve\/([^/]+)\/profile\.json$/.exec(f.name)?.[1])
    .filter((n): n is string => n !== undefined)
    .sort();
  const ves: VirtualEnvironment[] = [];
  for (const name of names) {
    let doc: unknown;
    try {
      doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fs.read(veFiles(name).profile)));
    } catch (e) {
      throw new VmmError('CONFIG_INVALID', `profile of ${name}: ${(e as Error).message}`);
    }
    const profile = parseProfile(doc, realFsProfileFiles(fs, name, disk, layout));
    if (profile.name !== name)
      throw new VmmError('CONFIG_INVALID', `ve/${name}/profile.json names ${profile.name}`);
    ves.push(vmm.createVe(profile));
  }
  const fw = layout.partitions.find((p) => p.kind === 'firewall');
  return {
    layout,
    fs,
    spool: fs.stat(REAL_FILES.spool) === undefined ? undefined : fs.region(REAL_FILES.spool),
    firewall: fw === undefined ? undefined : partitionOf(disk, layout, fw.name),
    ves,
  };
}

function realFs(disk: BlockBackend, layout: DiskLayout): RealFs {
  const real = layout.partitions.find((p) => p.kind === 'real');
  if (real === undefined) throw new VmmError('CONFIG_INVALID', 'the disk has no real partition');
  return openRealFs(partitionOf(disk, layout, real.name));
}
