/**
 * The whole machine: CPU, physical memory with the boot ROM at the top, MMU, and the devices on the
 * I/O bus at fixed ports and interrupt lines. It runs for a budget of instructions and says why it
 * stopped; time is counted in instructions (a halted CPU lets time pass up to the next device
 * event), the wall clock comes only from the injected clock (RTC), so a run replays exactly.
 *
 * | device  | ports        | IRQ line -> vector (PIC base 0x20 after reset) |
 * |---------|--------------|-------------------------------------------------|
 * | PIC     | 0x20-0x26    | -                                               |
 * | timer   | 0x40-0x43    | 0 -> 0x20                                       |
 * | NVRAM   | 0x70-0x77    | -                                               |
 * | RTC     | 0x78-0x7A    | -                                               |
 * | console | 0x3F8-0x3FB  | 1 -> 0x21                                       |
 * | disk    | 0x1F0-0x1F6  | 2 -> 0x22                                       |
 * | NIC     | 0x300-0x30B  | 3 -> 0x23                                       |
 * | NIC 2   | 0x310-0x31B  | 4 -> 0x24 (only with `nics: 2`: a firewall's outside port) |
 * | crypto  | 0x320-0x326  | - (only with `crypto`: claim 39's VE-key device, devices/cryptodev.ts) |
 */
import { Cpu, type RunResult, type StopReason } from './cpu/cpu.js';
import { run } from './cpu/exec.js';
import { FL } from './cpu/flags.js';
import type { JitOptions } from './cpu/jit.js';
import { restoreCpu, saveCpu } from './cpu/snapshot.js';
import { IoBus, type PortDevice } from './devices/bus.js';
import { ConsoleDevice } from './devices/console.js';
import { CryptoDevice, type CryptoDeviceOptions } from './devices/cryptodev.js';
import { type BlockBackend, Disk, memoryBlockBackend } from './devices/disk.js';
import { arrayDma, type Dma } from './devices/dma.js';
import { Nic } from './devices/nic.js';
import { Nvram, type NvramBackend } from './devices/nvram.js';
import { Pic } from './devices/pic.js';
import { Rtc } from './devices/rtc.js';
import { Timer } from './devices/timer.js';
import { Mmu } from './memory/mmu.js';
import { PhysicalMemory } from './memory/physical.js';

export interface MachineOptions {
  /** RAM bytes (default 16 MiB). */
  readonly ramBytes?: number;
  /** Existing bytes to use as RAM, shared (a VM manager's portion of real RAM; see PhysicalMemory). */
  readonly ram?: Uint8Array;
  /** Boot ROM image, mapped to end at 0xFFFFFFFF; the CPU starts at 0xFFFFFFF0 (BOOT-6). */
  readonly rom?: Uint8Array;
  /** Wall clock for the RTC, ms since the epoch (injected: no real time inside the machine). */
  readonly clock: () => number;
  readonly nvram?: NvramBackend;
  readonly disk?: BlockBackend;
  /** Write-protected disk sectors (DEV-11). */
  readonly protectedBlocks?: Iterable<number>;
  /** Devices are advanced at least every this many instructions (default 1000). */
  readonly quantum?: number;
  /** The NIC's address (default 02:00:00:00:00:01). */
  readonly nicMac?: Uint8Array;
  /** NICs (default 1); a second one sits at 0x310, line 4 (a firewall's two sides, FW-2). */
  readonly nics?: 1 | 2;
  /** The second NIC's address (default 02:00:00:00:00:02). */
  readonly nic2Mac?: Uint8Array;
  /** A crypto device (claim 39) at 0x320 whose key slots only the host loads (default none). */
  readonly crypto?: Omit<CryptoDeviceOptions, 'dma'>;
  /**
   * The CPU's block compiler (src/cpu/jit.ts): on by default; false runs every instruction in the
   * run loop. It changes how fast the machine runs, never what it does.
   */
  readonly jit?: boolean | JitOptions;
}

export interface MachineRunResult {
  readonly reason: StopReason;
  /** Instructions executed. */
  readonly executed: number;
  /** Instruction times spent halted, waiting for a device (count toward the budget). */
  readonly idle: number;
  readonly vector?: number;
  readonly errorCode?: number;
}

export class Machine {
  readonly phys: PhysicalMemory;
  readonly mmu: Mmu;
  readonly io = new IoBus();
  readonly pic = new Pic();
  readonly cpu: Cpu;
  readonly timer: Timer;
  readonly console: ConsoleDevice;
  readonly rtc: Rtc;
  readonly nvram: Nvram;
  readonly disk: Disk;
  readonly nic: Nic;
  /** Every NIC: `nic` first. */
  readonly nics: readonly Nic[];
  private readonly quantum: number;
  private readonly dma: Dma;
  private cryptoDevice: CryptoDevice | undefined;
  /**
   * What runs the CPU for a slice (default: the interpreter on `cpu`). The VM manager sets it on a
   * virtual environment's machine: the guest then runs natively on the real CPU, ring-compressed,
   * while this machine's devices, slicing and halting work exactly as on a bare machine.
   */
  executor: ((budget: number) => RunResult) | undefined = undefined;
  /** `cpu.instructions` when the current slice started; -1 outside a slice (exact device time, `run`). */
  private sliceStart = -1;
  /** Instructions of the current slice the devices have already been ticked for. */
  private ticked = 0;

  constructor(opts: MachineOptions) {
    this.phys = new PhysicalMemory({
      ...(opts.ramBytes === undefined ? {} : { ramBytes: opts.ramBytes }),
      ...(opts.ram === undefined ? {} : { ram: opts.ram }),
      ...(opts.rom === undefined ? {} : { rom: opts.rom }),
    });
    this.mmu = new Mmu(this.phys);
    const irq = (line: number) => this.pic.raise(line);
    const dma = arrayDma(this.phys.ram);
    this.dma = dma;
    this.timer = new Timer({ irq });
    this.console = new ConsoleDevice({ irq });
    this.rtc = new Rtc({ clock: opts.clock });
    this.nvram = new Nvram(opts.nvram === undefined ? {} : { backend: opts.nvram });
    this.disk = new Disk({
      backend: opts.disk ?? memoryBlockBackend(2048),
      dma,
      irq,
      ...(opts.protectedBlocks === undefined ? {} : { protectedBlocks: opts.protectedBlocks }),
    });
    this.nic = new Nic({ dma, irq, ...(opts.nicMac === undefined ? {} : { mac: opts.nicMac }) });
    const nics = opts.nics ?? 1;
    if (nics !== 1 && nics !== 2) throw new RangeError(`a machine has 1 or 2 NICs, not ${String(nics)}`);
    this.nics =
      nics === 1
        ? [this.nic]
        : [
            this.nic,
            new Nic({ dma, irq, base: 0x310, line: 4, mac: opts.nic2Mac ?? Uint8Array.of(2, 0, 0, 0, 0, 2) }),
          ];
    for (const d of [this.pic, this.nvram, this.rtc, this.console, ...this.nics]) {
      this.io.attach(d.ports[0], d.ports[1], d);
    }
    for (const d of [this.timer, this.disk]) this.io.attach(d.ports[0], d.ports[1], this.timed(d));
    if (opts.crypto !== undefined) this.attachCrypto(opts.crypto);
    this.cpu = new Cpu({
      mmu: this.mmu,
      io: this.io,
      irq: this.pic,
      ...(opts.jit === undefined ? {} : { jit: opts.jit }),
    });
    this.quantum = opts.quantum ?? 1000;
  }

  /** The crypto device, when the machine has one. */
  get crypto(): CryptoDevice | undefined {
    return this.cryptoDevice;
  }

  /**
   * Fits the crypto device (claim 39) to a machine made without one, e.g. a VE's by the VM
   * manager; its ports must be free. A host operation, before the guest uses them.
   */
  attachCrypto(opts: Omit<CryptoDeviceOptions, 'dma'>): CryptoDevice {
    if (this.cryptoDevice !== undefined) throw new RangeError('the machine already has a crypto device');
    const d = new CryptoDevice({ ...opts, dma: this.dma });
    this.io.attach(d.ports[0], d.ports[1], d);
    this.cryptoDevice = d;
    return d;
  }

  /**
   * Runs for at most `budget` instruction times.
   *
   * Device time is exact (issue 3): the CPU runs in slices that end at the next device event (or
   * after `quantum` instructions), and the devices are ticked by the instructions each slice
   * executed. When the guest reaches the timer or the disk during a slice, which may move their
   * next event, the devices are first ticked up to that instruction (so the access sees exact
   * device state) and the slice ends after it (so the device's new event bounds the next one): an
   * event happens at the instruction its device's timing says, whatever the quantum.
   */
  run(budget: number): MachineRunResult {
    let executed = 0;
    let idle = 0;
    while (executed + idle < budget) {
      const left = budget - executed - idle;
      const slice = Math.max(1, Math.min(left, this.quantum, this.timer.nextEvent(), this.disk.nextEvent()));
      let r: RunResult;
      this.sliceStart = this.cpu.instructions;
      this.ticked = 0;
      try {
        r = this.executor === undefined ? run(this.cpu, slice) : this.executor(slice);
      } finally {
        this.sliceStart = -1;
      }
      executed += r.executed;
      this.tick(r.executed - this.ticked);
      if (r.reason === 'budget') continue;
      if (r.reason !== 'halt') return { ...r, executed, idle };
      // Halted. An interrupt that became pending during the slice's device tick wakes it now.
      if (!(this.cpu.eflags & FL.IF)) return { reason: 'halt', executed, idle };
      if (this.pic.pending() >= 0) continue;
      // Otherwise time passes to the next device event; with none coming, only the host can wake
      // it (console or NIC input), so the run stops.
      const next = Math.min(this.timer.nextEvent(), this.disk.nextEvent());
      if (!Number.isFinite(next)) return { reason: 'halt', executed, idle };
      const wait = Math.max(1, Math.min(next, budget - executed - idle));
      idle += wait;
      this.tick(wait);
    }
    return { reason: 'budget', executed, idle };
  }

  private tick(n: number): void {
    if (n <= 0) return;
    this.timer.tick(n);
    this.disk.tick(n);
  }

  /**
   * `device` as the bus sees it: an access during a slice first ticks the devices by the
   * instructions the slice executed before the accessing one, then ends the slice after it (see
   * `run`). Outside a slice (the host's own accesses) the devices are already up to date. An
   * executor (the VM manager's) keeps `cpu.instructions` counting every instruction of the slice,
   * native or not, and ends its slice when `cpu.endRun` is set, so device time is exact there too.
   */
  private timed(device: PortDevice): PortDevice {
    const sync = (): boolean => {
      if (this.sliceStart < 0) return false;
      // The accessing instruction has not retired: cpu.instructions counts those before it.
      const now = this.cpu.instructions - this.sliceStart;
      if (now > this.ticked) {
        // Cannot reach an event: the slice ends at the next one, and after any access.
        this.tick(now - this.ticked);
        this.ticked = now;
      }
      return true;
    };
    return {
      name: device.name,
      read: (port) => {
        const inSlice = sync();
        const v = device.read(port);
        if (inSlice) this.cpu.endRun = true;
        return v;
      },
      write: (port, value) => {
        const inSlice = sync();
        device.write(port, value);
        if (inSlice) this.cpu.endRun = true;
      },
    };
  }

  /** Power-on reset: CPU and devices; RAM keeps its contents, NVRAM and disk persist (BOOT-2). */
  reset(): void {
    this.cpu.reset();
    for (const d of this.devices()) d.reset();
  }

  /** The whole machine state as bytes: CPU, RAM, every device (not the disk contents: a back-end). */
  save(): Uint8Array {
    const parts = [saveCpu(this.cpu), this.phys.ram, ...this.devices().map((d) => d.save())];
    let total = 8;
    for (const p of parts) total += 4 + p.length;
    const out = new Uint8Array(total);
    const v = new DataView(out.buffer);
    v.setUint32(0, 0x314d4c43, true); // "CLM1"
    v.setUint32(4, parts.length, true);
    let at = 8;
    for (const p of parts) {
      v.setUint32(at, p.length, true);
      out.set(p, at + 4);
      at += 4 + p.length;
    }
    return out;
  }

  restore(bytes: Uint8Array): void {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const devices = this.devices();
    const count = 2 + devices.length;
    if (bytes.length < 8 || v.getUint32(0, true) !== 0x314d4c43 || v.getUint32(4, true) !== count) {
      throw new RangeError('not a machine snapshot');
    }
    const parts: Uint8Array[] = [];
    let at = 8;
    for (let i = 0; i < count; i++) {
      if (at + 4 > bytes.length) throw new RangeError('truncated machine snapshot');
      const n = v.getUint32(at, true);
      if (at + 4 + n > bytes.length) throw new RangeError('truncated machine snapshot');
      parts.push(bytes.subarray(at + 4, at + 4 + n));
      at += 4 + n;
    }
    if (at !== bytes.length) throw new RangeError('trailing bytes after a machine snapshot');
    if (parts[1]!.length !== this.phys.ram.length) throw new RangeError('snapshot RAM size differs');
    restoreCpu(this.cpu, parts[0]!);
    this.phys.ram.set(parts[1]!);
    for (const [i, d] of devices.entries()) d.restore(parts[2 + i]!);
  }

  private devices() {
    const all = [this.pic, this.timer, this.nvram, this.rtc, this.console, this.disk, ...this.nics];
    return this.cryptoDevice === undefined ? all : [...all, this.cryptoDevice];
  }
}

export function createMachine(opts: MachineOptions): Machine {
  return new Machine(opts);
}
