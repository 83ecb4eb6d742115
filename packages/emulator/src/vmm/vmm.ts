/**
 * The VM manager and the small core beside it in real ring 0 (VMM-*, CORE-*): it owns the real
 * machine, divides its RAM into its own table area and one portion per virtual environment
 * (CORE-4, MEM-1), creates and deletes VEs from guest profiles (CORE-6, VMM-8, BOOT-11), switches
 * the real CPU between them and runs them round-robin (CORE-9), and reports what happens (TB-2).
 *
 * It is TypeScript acting as the machine's ring-0 firmware: the guest's instructions run on the
 * emulated CPU (ve.ts), and only what needs real ring 0 comes here.
 */

import { type Clef, type CryptoBackend, type Name, nodeBackend, parseName } from '@clefnet/protocol';
import type { BlockBackend } from '../devices/disk.js';
import type { NvramBackend } from '../devices/nvram.js';
import { blockRegion } from '../disk/block.js';
import { encryptedPartition, unwrapDataKey } from '../disk/crypt.js';
import { mirrored } from '../disk/mirror.js';
import { veMac } from '../dtm/frame.js';
import { createMachine, type Machine, type MachineRunResult } from '../machine.js';
import { Core, type TaskHandle } from './core.js';
import { VmmError } from './errors.js';
import { KEY_ADDRESS, KeyService, type KeyServiceOptions } from './keytrap.js';
import { bootMachineKey, type MachineTriple } from './machinekey.js';
import { PagePool } from './pages.js';
import type { SdtPolicy } from './sdt.js';
import {
  KEY_STATUS,
  type KeyTrapHook,
  MAX_INTERRUPT_LOOKAHEAD,
  type PolicyChoice,
  type VedtOptions,
  VirtualEnvironment,
  type VmmEvent,
} from './ve.js';
import { VeKeys } from './vekeys.js';

export interface VmmOptions {
  /** Real RAM bytes (default 64 MiB): the VM manager's tables, then the VEs' portions. */
  readonly ramBytes?: number;
  /** Real RAM the VM manager keeps for its own tables (default 4 MiB). */
  readonly tableBytes?: number;
  /** The physical disk the VEs' disk regions are carved from (TB-9). */
  readonly disk?: BlockBackend;
  /** Wall clock for every RTC (injected). */
  readonly clock: () => number;
  readonly onEvent?: (e: VmmEvent) => void;
  /** The real machine's NVRAM: configuration and the machine key (KEY-1). */
  readonly nvram?: NvramBackend;
  /** The crypto backend for disk keys and the machine key (default node:crypto's). */
  readonly crypto?: CryptoBackend;
}

/** A guest profile (BOOT-11, TB-8): what a VE is made of. */
export interface VeProfile {
  readonly name: string;
  /** Guest RAM bytes (its portion; a multiple of 4 KiB). */
  readonly memoryBytes: number;
  /** Its boot ROM image (BOOT-11 a, BOOT-6). */
  readonly rom: Uint8Array;
  /** Its NVRAM image (BOOT-11 b). */
  readonly nvram?: NvramBackend;
  /** Its region of the physical disk and the blocks it may not write (BOOT-11 d, TB-9). */
  readonly disk?: {
    readonly start: number;
    readonly count: number;
    readonly protectedBlocks?: readonly number[];
    /** RAID-1 (DEV-12, TB-9): a second region of the same size every write also goes to. */
    readonly mirror?: { readonly start: number; readonly count: number };
  };
  /**
   * Transparent encryption of its disk (claim 30, CRYPT-1..4, TB-10): the partition's wrapped data
   * key (disk/crypt.ts), unwrapped with the machine key read at boot (and the passphrase, for the
   * two-level scheme). The guest sees plaintext; the disk holds XTS ciphertext.
   */
  readonly encryption?: {
    readonly header: Uint8Array;
    readonly passphrase?: string;
    readonly partition?: string;
  };
  /** Instead of a region: a disk of its own (a file; DEV-7 dedicated hardware). */
  readonly diskImage?: BlockBackend;
  /** Blocks of `diskImage` it may not write (DEV-11). */
  readonly protectedBlocks?: readonly number[];
  /** SDT creation policy (SDT-18..20), or 'adaptive' (SDT-22; the default unless recognised). */
  readonly sdtPolicy?: PolicyChoice;
  /** Recognise two-ring guests and run them with quick pass-through (QPT-2; default true). */
  readonly qpt?: boolean;
  /** SDT-16's outward guard (default true; false shows ATK-19). */
  readonly outwardGuard?: boolean;
  /**
   * After delivering an interrupt, the VM manager lets the virtual CPU run up to this many
   * instructions of the handler until it returns (default 16; 0: none), so that a short handler's
   * OUT and IRET, which trap natively, cost no entry each (docs/vmm.md).
   */
  readonly interruptLookahead?: number;
  /** VEDT substitution (the third embodiment) instead of SDTs for the GDT (TB-8 `vedt_mode`). */
  readonly vedt?: VedtOptions;
  /** Device quantum of the VE's machine (see MachineOptions). */
  readonly quantum?: number;
  /**
   * The key trap (KEY-6..8): a call to `address` (guest-physical, on the empty bus between its RAM
   * and its ROM; default KEY_ADDRESS) obtains the limited-use key of Name-VE `name` through the
   * VMM's key service (`startKeyService`).
   */
  readonly keyTrap?: { readonly name: Name; readonly address?: number };
  /**
   * Its DTM port (TB-8 `dtm_config`): what the host that wires the data transfer managers applies
   * when it attaches this VE's NIC (dtm.ts PortOptions without the name and the NIC).
   */
  readonly dtm?: {
    readonly medium?: 'ethernet' | 'modem';
    readonly channel?: string;
    readonly mode?: 'pass' | 'spool';
    readonly reach?: readonly string[] | '*';
    readonly accept?: readonly string[] | '*';
    readonly confirm?: 'none' | 'outside' | 'all';
  };
  /** Its NICs (default 1; a firewall VE has 2, its inside and outside, FW-2). */
  readonly nics?: 1 | 2;
  /**
   * Claim 39: a crypto device (devices/cryptodev.ts) through which the guest seals and opens its
   * streams with key slots only the real environment loads (`ve.vm.crypto.load`), its own VE's keys.
   */
  readonly cryptoDevice?: boolean;
}

/** Block translation (TB-9): virtual block b of a VE is physical block start + b, for b < count. */
export function diskRegion(disk: BlockBackend, start: number, count: number): BlockBackend {
  return blockRegion(disk, start, count, 'disk region');
}

/**
 * Guests the VM manager recognises (VMM-11, SDT-22, TB-6), by a signature in their boot ROM, and
 * the SDT policy suited to each. A two-ring guest is recognised from its VEDT instead (QPT-2).
 */
export const KNOWN_GUESTS: readonly {
  readonly name: string;
  readonly signature: string;
  readonly policy: SdtPolicy;
  readonly why: string;
}[] = [
  {
    name: 'tinyos',
    signature: 'tinyos ROM:',
    policy: 'P2',
    why: 'four rings, a ring change at every kernel print and system call',
  },
];

/** The known guest whose signature the ROM holds, if any. */
export function recognise(rom: Uint8Array): (typeof KNOWN_GUESTS)[number] | undefined {
  return KNOWN_GUESTS.find((g) => holds(rom, g.signature));
}

/** Whether `bytes` hold the ASCII string `text`. */
function holds(bytes: Uint8Array, text: string): boolean {
  const first = text.charCodeAt(0);
  for (
    let i = bytes.indexOf(first);
    i >= 0 && i + text.length <= bytes.length;
    i = bytes.indexOf(first, i + 1)
  ) {
    let j = 1;
    while (j < text.length && bytes[i + j] === text.charCodeAt(j)) j++;
    if (j === text.length) return true;
  }
  return false;
}

export class Vmm {
  /** The real machine: its CPU runs every VE's code. */
  readonly machine: Machine;
  /** The core: real interrupt handlers and dispatch, critical sections, task messaging. */
  readonly core: Core;
  private readonly pool: PagePool;
  private readonly ves = new Map<number, VirtualEnvironment>();
  private readonly portions = new Map<number, { base: number; bytes: number }>();
  private nextId = 1;
  /** Real-environment tasks' turns (the DTMs' `service`), run after every VE slice. */
  private readonly services: (() => void)[] = [];
  /** The VEs' keys (KEY-5), filled by the key trap. */
  readonly keys = new VeKeys();
  private machineTriple: MachineTriple | undefined;
  private keyService: KeyService | undefined;
  /** The VE whose state is in the real CPU. */
  private current: VirtualEnvironment | undefined;
  private readonly opts: VmmOptions;

  constructor(opts: VmmOptions) {
    this.opts = opts;
    const ramBytes = opts.ramBytes ?? 64 << 20;
    const tableBytes = opts.tableBytes ?? 4 << 20;
    if (tableBytes % 4096 !== 0 || tableBytes >= ramBytes) {
      throw new VmmError('CONFIG_INVALID', 'tableBytes must be a multiple of 4096 below ramBytes');
    }
    this.machine = createMachine({
      ramBytes,
      clock: opts.clock,
      ...(opts.nvram === undefined ? {} : { nvram: opts.nvram }),
    });
    this.pool = new PagePool(this.machine.phys, 0, tableBytes);
    this.core = new Core(this.machine.pic);
  }

  /** Creates a VE from its profile (CORE-6); it starts at its reset vector in virtual ring 0 (BOOT-8). */
  createVe(profile: VeProfile): VirtualEnvironment {
    const bytes = profile.memoryBytes;
    if (!Number.isInteger(bytes) || bytes <= 0 || bytes % 4096 !== 0) {
      throw new VmmError('CONFIG_INVALID', `memoryBytes must be a positive multiple of 4096, not ${bytes}`);
    }
    const lookahead = profile.interruptLookahead;
    if (
      lookahead !== undefined &&
      !(Number.isInteger(lookahead) && lookahead >= 0 && lookahead <= MAX_INTERRUPT_LOOKAHEAD)
    ) {
      throw new VmmError(
        'CONFIG_INVALID',
        `interruptLookahead must be an integer from 0 to ${MAX_INTERRUPT_LOOKAHEAD}, not ${lookahead}`,
      );
    }
    const base = this.allocPortion(bytes);
    const id = this.nextId++;
    const ram = this.machine.phys.ram.subarray(base, base + bytes);
    ram.fill(0);
    const region = profile.disk;
    let disk = profile.diskImage;
    if (region !== undefined) {
      if (disk !== undefined)
        throw new VmmError('CONFIG_INVALID', 'a profile gives a disk region or a disk image, not both');
      if (this.opts.disk === undefined)
        throw new VmmError('CONFIG_INVALID', 'a disk region needs the VMM disk');
      disk = diskRegion(this.opts.disk, region.start, region.count);
      if (region.mirror !== undefined) {
        disk = mirrored(disk, diskRegion(this.opts.disk, region.mirror.start, region.mirror.count));
      }
    }
    if (profile.encryption !== undefined) {
      if (disk === undefined) throw new VmmError('CONFIG_INVALID', 'encryption needs a disk');
      if (this.machineTriple === undefined) {
        throw new VmmError('BAD_STATE', 'an encrypted disk needs the machine key: boot it first');
      }
      const crypto = this.opts.crypto ?? nodeBackend;
      const key = unwrapDataKey(profile.encryption.header, this.machineTriple.key, {
        backend: crypto,
        ...(profile.encryption.passphrase === undefined ? {} : { passphrase: profile.encryption.passphrase }),
        ...(profile.encryption.partition === undefined ? {} : { partition: profile.encryption.partition }),
      });
      disk = encryptedPartition(disk, key, crypto);
      key.fill(0);
    }
    const protectedBlocks = region?.protectedBlocks ?? profile.protectedBlocks;
    let keyTrap: KeyTrapHook | undefined;
    if (profile.keyTrap !== undefined) {
      const address = profile.keyTrap.address ?? KEY_ADDRESS;
      const romFirst = 2 ** 32 - profile.rom.length;
      if (!Number.isInteger(address) || address < bytes || address >= romFirst) {
        throw new VmmError(
          'CONFIG_INVALID',
          `the key address 0x${address.toString(16)} is not on the empty bus between the VE's RAM and ROM`,
        );
      }
      const veName = profile.name;
      const subject = parseName(profile.keyTrap.name);
      keyTrap = {
        address,
        call: () => {
          if (this.keyService === undefined) return { status: KEY_STATUS.REFUSED };
          return this.keyService.call(veName, subject);
        },
      };
    }
    const vm = createMachine({
      ram,
      rom: profile.rom,
      clock: this.opts.clock,
      ...(profile.nvram === undefined ? {} : { nvram: profile.nvram }),
      ...(disk === undefined ? {} : { disk }),
      ...(protectedBlocks === undefined ? {} : { protectedBlocks }),
      // Device time is exact whatever the quantum (machine.ts): a long one spares the VMM's work
      // between slices.
      quantum: profile.quantum ?? 65_536,
      // Its NIC's address: what the data transfer manager knows it by.
      nicMac: veMac(id),
      ...(profile.nics === 2 ? { nics: 2 as const, nic2Mac: veMac(id, 1) } : {}),
    });
    if (profile.cryptoDevice === true) vm.attachCrypto({ owner: profile.name });
    this.portions.set(id, { base, bytes });
    const ve = new VirtualEnvironment({
      id,
      name: profile.name,
      cpu: this.machine.cpu,
      pool: this.pool,
      vm,
      portionBase: base,
      policy: profile.sdtPolicy ?? recognise(profile.rom)?.policy ?? 'adaptive',
      ...(profile.qpt === undefined ? {} : { qpt: profile.qpt }),
      outwardGuard: profile.outwardGuard ?? true,
      ...(lookahead === undefined ? {} : { interruptLookahead: lookahead }),
      ...(profile.vedt === undefined ? {} : { vedt: profile.vedt }),
      onEvent: this.opts.onEvent,
      ...(keyTrap === undefined ? {} : { keyTrap }),
    });
    this.ves.set(id, ve);
    return ve;
  }

  ve(id: number): VirtualEnvironment {
    const ve = this.ves.get(id);
    if (ve === undefined) throw new VmmError('VMM_BAD_VE', `no VE ${id}`, { ve: id });
    return ve;
  }

  list(): VirtualEnvironment[] {
    return [...this.ves.values()];
  }

  /** Runs one VE for up to `budget` of its instructions (a VM switch in and out around it). */
  run(id: number, budget: number): MachineRunResult {
    const ve = this.ve(id);
    this.switchTo(ve);
    try {
      return ve.vm.run(budget);
    } finally {
      ve.leave();
      // Real interrupts raised meanwhile (a real device's host side) reach their handlers now,
      // then the real environment's tasks have their turn.
      this.serviceReal();
    }
  }

  /**
   * The real environment's turn without a VE slice: pending real interrupts reach their handlers,
   * then every task added with {@link addService} runs. A host that has just fed a real device (a
   * frame into the real NIC) calls it before the VEs' slices, so what the device brought is in the
   * VEs' queues when they run.
   */
  serviceReal(): void {
    this.core.dispatch();
    for (const s of this.services) s();
  }

  /**
   * Gives a real-environment task (a DTM's `service`) a turn after every VE slice and in every
   * {@link serviceReal} (CORE-9: the scheduler runs the ring-1 tasks too). Returns the function that
   * removes it.
   */
  addService(service: () => void): () => void {
    this.services.push(service);
    return () => {
      const i = this.services.indexOf(service);
      if (i >= 0) this.services.splice(i, 1);
    };
  }

  /**
   * Boot (BOOT-4, KEY-1): reads the machine triple from the real NVRAM through its ports and hides
   * it until the next reset (machinekey.ts). Done once; the VMM keeps it in its own memory.
   */
  bootMachineKey(backend: CryptoBackend): { readonly name: Name; readonly clef: Clef } {
    if (this.machineTriple === undefined) this.machineTriple = bootMachineKey(this.machine, backend);
    return { name: this.machineTriple.name, clef: this.machineTriple.clef };
  }

  /** The machine triple, for a real-environment task of ring 0 or 1 only (claim 29). */
  machineKey(task: TaskHandle): MachineTriple {
    if (task.ring > 1 || !this.core.owns(task)) {
      throw new VmmError('CONFIG_INVALID', 'only ring-0 and ring-1 tasks of this core read the machine key');
    }
    if (this.machineTriple === undefined)
      throw new VmmError('BAD_STATE', 'the machine key was not read at boot');
    return this.machineTriple;
  }

  /** Starts the key trap's service (KEY-7) with the booted machine triple. */
  startKeyService(opts: Omit<KeyServiceOptions, 'machine' | 'keys'>): KeyService {
    if (this.machineTriple === undefined) throw new VmmError('BAD_STATE', 'boot the machine key first');
    this.keyService = new KeyService({ ...opts, machine: this.machineTriple, keys: this.keys });
    return this.keyService;
  }

  /** A zeroed page of the VM manager's own RAM (CORE-4), e.g. a driver's DMA buffer. */
  allocPage(): number {
    return this.pool.alloc();
  }

  /**
   * Round-robin scheduling (CORE-9): each VE that is not stopped runs `slice` instructions per turn,
   * for `rounds` turns or until every VE has stopped (halted with interrupts off, shut down, or
   * halted with no device event to wake it). Returns each VE's last result.
   */
  schedule(slice: number, rounds: number): Map<number, MachineRunResult> {
    const last = new Map<number, MachineRunResult>();
    const stopped = new Set<number>();
    for (let round = 0; round < rounds && stopped.size < this.ves.size; round++) {
      for (const ve of this.ves.values()) {
        if (stopped.has(ve.id)) continue;
        const r = this.run(ve.id, slice);
        last.set(ve.id, r);
        if (r.reason !== 'budget') stopped.add(ve.id);
      }
    }
    return last;
  }

  deleteVe(id: number): void {
    const ve = this.ve(id);
    if (this.current === ve) this.current = undefined;
    ve.release();
    this.ves.delete(id);
    this.portions.delete(id);
  }

  private switchTo(ve: VirtualEnvironment): void {
    if (this.current !== ve) this.current?.leave();
    this.current = ve;
    ve.enter();
  }

  /** First fit in the RAM above the table area. */
  private allocPortion(bytes: number): number {
    const taken = [...this.portions.values()].sort((a, b) => a.base - b.base);
    let at = this.pool.base + this.pool.bytes;
    for (const p of taken) {
      if (at + bytes <= p.base) break;
      at = Math.max(at, p.base + p.bytes);
    }
    if (at + bytes > this.machine.phys.ram.length) {
      throw new VmmError('VMM_OUT_OF_MEMORY', `no free portion of ${bytes} bytes`);
    }
    return at;
  }
}
