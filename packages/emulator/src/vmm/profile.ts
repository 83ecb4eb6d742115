/**
 * Guest profile files (BOOT-11, TB-8): one JSON document per VE. Parsing is strict: an unknown
 * key, a wrong type or a value out of range is a CONFIG_INVALID error naming the key. Keys the VM
 * manager cannot honour yet are refused, not ignored (a profile asking for encryption must not run
 * unencrypted).
 *
 * ```json
 * {
 *   "name": "tinyos-1",
 *   "memory_bytes": 1048576,
 *   "boot_rom_image": "tinyos.rom",
 *   "nvram_image": "tinyos-1.nvram",
 *   "disk": { "device": "disk.img", "start_block": 0, "block_count": 128, "protected_blocks": [0] },
 *   "sdt_policy": "adaptive",
 *   "qpt": true,
 *   "vedt_mode": "off",
 *   "vedt_write": "auto",
 *   "vedt_guard": true,
 *   "outward_guard": true,
 *   "encryption": { "key_file": "tinyos-1.diskkey", "passphrase_env": "TINYOS_1_PASSPHRASE" },
 *   "key_trap": { "name": "ve-1.anc1.example", "address": 4294836224 },
 *   "nics": 1,
 *   "dtm_config": { "medium": "ethernet", "mode": "spool", "reach": ["firewall"], "confirm": "outside" }
 * }
 * ```
 *
 * File names are relative to the profile's directory. `disk.device` names the VE's own disk file
 * (a dedicated disk); without it the region is carved from the VM manager's disk (TB-9), and
 * `disk.mirror` ({start_block, block_count}) adds a RAID-1 copy (DEV-12). `encryption.key_file` is
 * the partition's wrapped data key (disk/crypt.ts); the two-level scheme's passphrase comes from
 * the environment variable `passphrase_env`, never from the file. `key_trap` (testbed key) turns on
 * the key trap for Name-VE `name`; `nics` (testbed key) gives a firewall VE its second NIC;
 * `crypto_device` (testbed key) the claim-39 crypto device;
 * `dtm_config` is the VE's DTM port (dtm.ts PortOptions: medium, channel, mode, reach, accept,
 * confirm), which the host that wires the DTMs applies.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isName, type Name } from '@clefnet/protocol';
import { type BlockBackend, fileBlockBackend } from '../devices/disk.js';
import { fileNvramBackend, type NvramBackend } from '../devices/nvram.js';
import { VmmError } from './errors.js';
import { MAX_INTERRUPT_LOOKAHEAD, type PolicyChoice, type VedtOptions } from './ve.js';
import type { VeProfile } from './vmm.js';

const KEYS = new Set([
  'name',
  'memory_bytes',
  'boot_rom_image',
  'nvram_image',
  'ring_apps',
  'disk',
  'devices',
  'io_ports',
  'sdt_policy',
  'qpt',
  'vedt_mode',
  'vedt_write',
  'vedt_guard',
  'outward_guard',
  'interrupt_lookahead',
  'dtm_config',
  'encryption',
  'allow_removable_boot',
  'key_trap',
  'nics',
  'crypto_device',
]);
/** TB-8 keys this VM manager does not honour yet; refused unless empty or absent. */
const NOT_YET = ['ring_apps', 'devices', 'io_ports'] as const;

function bad(key: string, what: string): never {
  throw new VmmError('CONFIG_INVALID', `profile: ${key} ${what}`, { key });
}

function int(o: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    bad(key, `must be an integer in ${min}..${max}`);
  return v;
}

function str(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) bad(key, 'must be a non-empty string');
  return v;
}

function bool(o: Record<string, unknown>, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') bad(key, 'must be true or false');
  return v;
}

function oneOf<T extends string>(
  o: Record<string, unknown>,
  key: string,
  values: readonly T[],
): T | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
    bad(key, `must be one of ${values.join(', ')}`);
  return v as T;
}

const isEmpty = (v: unknown): boolean =>
  v === undefined ||
  v === null ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && v !== null && Object.values(v).every(isEmpty));

/**
 * Where a profile's files come from: a directory (`directoryFiles`), or the real partition's file
 * system of the machine's disk (install.ts: the VMM data area, Fig. 5 104d).
 */
export interface ProfileFiles {
  /** A whole file (the boot ROM, the wrapped disk key); throws when it cannot be read. */
  read(name: string): Uint8Array;
  /** The NVRAM image `name`, as a backend (it need not exist yet). */
  nvram(name: string): NvramBackend;
  /** `disk.device`: a dedicated disk (a file, or a partition of the machine's disk). */
  device(name: string): BlockBackend;
}

/** Profile files relative to a directory of the host's file system. */
export function directoryFiles(dir: string): ProfileFiles {
  return {
    read: (name) => new Uint8Array(readFileSync(resolve(dir, name))),
    nvram: (name) => fileNvramBackend(resolve(dir, name)),
    device: (name) => fileBlockBackend(resolve(dir, name)),
  };
}

/** Parses a profile document (already JSON-decoded); files are read relative to `dir`. */
export function parseProfile(doc: unknown, dir: string | ProfileFiles): VeProfile {
  const files = typeof dir === 'string' ? directoryFiles(dir) : dir;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    bad('(document)', 'must be a JSON object');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) bad(k, 'is not a profile key (TB-8)');
  for (const k of NOT_YET) if (!isEmpty(o[k])) bad(k, 'is not supported by this VM manager yet');
  if (o.allow_removable_boot === true) bad('allow_removable_boot', 'is not supported (no removable media)');
  const name = str(o, 'name') ?? bad('name', 'is required');
  const memoryBytes = int(o, 'memory_bytes', 4096, 0xc000_0000) ?? bad('memory_bytes', 'is required');
  if (memoryBytes % 4096 !== 0) bad('memory_bytes', 'must be a multiple of 4096');
  const romFile = str(o, 'boot_rom_image') ?? bad('boot_rom_image', 'is required');
  const rom = readFile(files, romFile, 'boot_rom_image');
  if (rom.length === 0 || rom.length > 0x10_0000) bad('boot_rom_image', 'must be 1 byte to 1 MiB');
  const nvramFile = str(o, 'nvram_image');
  const policy = oneOf<PolicyChoice>(o, 'sdt_policy', ['P1', 'P2', 'P3', 'adaptive']);
  const qpt = bool(o, 'qpt');
  const outwardGuard = bool(o, 'outward_guard');
  const interruptLookahead = int(o, 'interrupt_lookahead', 0, MAX_INTERRUPT_LOOKAHEAD);
  const mode = oneOf(o, 'vedt_mode', ['off', 'current-ring', 'static'] as const);
  const method = oneOf(o, 'vedt_write', ['trap', 'overwrite', 'auto'] as const);
  const guard = bool(o, 'vedt_guard');
  if ((mode === undefined || mode === 'off') && (method !== undefined || guard !== undefined)) {
    bad('vedt_write', 'and vedt_guard need vedt_mode current-ring or static');
  }
  const vedt: VedtOptions | undefined =
    mode === undefined || mode === 'off'
      ? undefined
      : { mode, method: method ?? 'auto', guard: guard ?? true };
  let disk: Pick<VeProfile, 'disk' | 'diskImage' | 'protectedBlocks'> = {};
  if (o.disk !== undefined) {
    if (typeof o.disk !== 'object' || o.disk === null || Array.isArray(o.disk))
      bad('disk', 'must be an object');
    const d = o.disk as Record<string, unknown>;
    for (const k of Object.keys(d)) {
      if (!['device', 'start_block', 'block_count', 'protected_blocks', 'mirror'].includes(k))
        bad(`disk.${k}`, 'is not a disk key');
    }
    let mirror: { start: number; count: number } | undefined;
    if (d.mirror !== undefined) {
      const m = object(d.mirror, 'disk.mirror', ['start_block', 'block_count']);
      const ms = int(m, 'start_block', 0, 0xffff_ffff) ?? bad('disk.mirror.start_block', 'is required');
      const mc = int(m, 'block_count', 1, 0xffff_ffff) ?? bad('disk.mirror.block_count', 'is required');
      mirror = { start: ms, count: mc };
    }
    const blocks = d.protected_blocks;
    if (
      blocks !== undefined &&
      (!Array.isArray(blocks) || !blocks.every((b) => Number.isInteger(b) && b >= 0))
    ) {
      bad('disk.protected_blocks', 'must be a list of block numbers');
    }
    const protectedBlocks = (blocks ?? []) as number[];
    const device = str(d, 'device');
    const start = int(d, 'start_block', 0, 0xffff_ffff);
    const count = int(d, 'block_count', 1, 0xffff_ffff);
    if (device !== undefined) {
      if (start !== undefined && start !== 0) bad('disk.start_block', 'must be 0 for a dedicated disk');
      if (mirror !== undefined) bad('disk.mirror', 'needs a region of the VM manager disk, not a device');
      let image: BlockBackend;
      try {
        image = files.device(device);
      } catch (e) {
        return bad('disk.device', `cannot be opened: ${(e as Error).message}`);
      }
      disk = { diskImage: image, protectedBlocks };
    } else {
      if (start === undefined || count === undefined)
        bad('disk', 'needs device, or start_block and block_count');
      if (mirror !== undefined && mirror.count !== count)
        bad('disk.mirror.block_count', 'must equal block_count');
      disk = { disk: { start, count, protectedBlocks, ...(mirror === undefined ? {} : { mirror }) } };
    }
  }
  let encryption: VeProfile['encryption'];
  if (o.encryption !== undefined) {
    if (disk.disk === undefined && disk.diskImage === undefined) bad('encryption', 'needs a disk');
    const e = object(o.encryption, 'encryption', ['key_file', 'passphrase_env']);
    const header = readFile(
      files,
      str(e, 'key_file') ?? bad('encryption.key_file', 'is required'),
      'encryption.key_file',
    );
    const env = str(e, 'passphrase_env');
    let passphrase: string | undefined;
    if (env !== undefined) {
      passphrase = process.env[env];
      if (passphrase === undefined || passphrase.length === 0)
        bad('encryption.passphrase_env', `names ${env}, which is not set`);
    }
    encryption = { header, partition: name, ...(passphrase === undefined ? {} : { passphrase }) };
  }
  let keyTrap: VeProfile['keyTrap'];
  if (o.key_trap !== undefined) {
    const k = object(o.key_trap, 'key_trap', ['name', 'address']);
    const keyName = str(k, 'name') ?? bad('key_trap.name', 'is required');
    if (!isName(keyName)) bad('key_trap.name', 'must be a Name (DNS-like labels)');
    const address = int(k, 'address', 0, 0xffff_ffff);
    keyTrap = { name: keyName as Name, ...(address === undefined ? {} : { address }) };
  }
  const nics = int(o, 'nics', 1, 2) as 1 | 2 | undefined;
  const cryptoDevice = bool(o, 'crypto_device');
  let dtm: VeProfile['dtm'];
  if (o.dtm_config !== undefined) {
    const c = object(o.dtm_config, 'dtm_config', ['medium', 'channel', 'mode', 'reach', 'accept', 'confirm']);
    const names = (key: string): readonly string[] | '*' | undefined => {
      const v = c[key];
      if (v === undefined || v === '*') return v;
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x.length > 0))
        bad(`dtm_config.${key}`, 'must be "*" or a list of port names');
      return v as string[];
    };
    const medium = oneOf(c, 'medium', ['ethernet', 'modem'] as const);
    const channel = str(c, 'channel');
    const mode = oneOf(c, 'mode', ['pass', 'spool'] as const);
    const confirm = oneOf(c, 'confirm', ['none', 'outside', 'all'] as const);
    const reach = names('reach');
    const accept = names('accept');
    if (medium === 'modem' && channel === undefined)
      bad('dtm_config.channel', 'is required for a modem link');
    dtm = {
      ...(medium === undefined ? {} : { medium }),
      ...(channel === undefined ? {} : { channel }),
      ...(mode === undefined ? {} : { mode }),
      ...(confirm === undefined ? {} : { confirm }),
      ...(reach === undefined ? {} : { reach }),
      ...(accept === undefined ? {} : { accept }),
    };
  }
  return {
    name,
    memoryBytes,
    rom,
    ...(encryption === undefined ? {} : { encryption }),
    ...(keyTrap === undefined ? {} : { keyTrap }),
    ...(nics === undefined ? {} : { nics }),
    ...(cryptoDevice === undefined ? {} : { cryptoDevice }),
    ...(dtm === undefined ? {} : { dtm }),
    ...(nvramFile === undefined ? {} : { nvram: files.nvram(nvramFile) }),
    ...disk,
    ...(policy === undefined ? {} : { sdtPolicy: policy }),
    ...(qpt === undefined ? {} : { qpt }),
    ...(outwardGuard === undefined ? {} : { outwardGuard }),
    ...(interruptLookahead === undefined ? {} : { interruptLookahead }),
    ...(vedt === undefined ? {} : { vedt }),
  };
}

/** Reads and parses a profile file. */
export function loadProfile(path: string): VeProfile {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new VmmError('CONFIG_INVALID', `profile ${path}: ${(e as Error).message}`);
  }
  return parseProfile(doc, resolve(path, '..'));
}

function object(v: unknown, key: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(key, 'must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!keys.includes(k)) bad(`${key}.${k}`, `is not a ${key} key`);
  return o;
}

function readFile(files: ProfileFiles, file: string, key: string): Uint8Array {
  try {
    return files.read(file);
  } catch (e) {
    return bad(key, `cannot be read: ${(e as Error).message}`);
  }
}
