/**
 * Runs a fuzz program on the bare machine and in a VE and compares what the guest can see: the
 * console transcript, the run result, the CPU state (general registers, EIP, EFLAGS, selectors and
 * hidden segment caches, descriptor-table and task registers, control registers, instructions
 * retired) and guest RAM.
 * Differences are checked against the known differences of ring compression (known.ts), each by
 * its own predicate.
 */
import type { Cpu } from '../../../src/cpu/cpu.js';
import { createMachine, type Machine, type MachineRunResult } from '../../../src/machine.js';
import type { SdtPolicy } from '../../../src/vmm/sdt.js';
import type { VirtualEnvironment } from '../../../src/vmm/ve.js';
import { type VeProfile, Vmm } from '../../../src/vmm/vmm.js';
import { guestAssembly } from '../guest.js';
import type { FuzzProgram } from './generator.js';

export const RAM_BYTES = 1 << 20;
/** Instructions a program may run: generous, as a fault loop is cut at MAX_FAULTS anyway. */
export const BUDGET = 60_000;

export interface Rom {
  readonly bytes: Uint8Array;
  readonly labels: ReadonlyMap<string, number>;
}

/** The program's boot ROM (scaffold.s with its GDT entries and `main`). */
export function buildRom(p: FuzzProgram): Rom {
  const r = guestAssembly({ main: p.main, gdt: p.gdt }, `fuzz-${p.seed}.s`);
  return { bytes: r.bytes, labels: r.labels };
}

/**
 * Everything of a CPU the guest can see (host configuration and caches left out), with the count
 * of instructions retired: the devices' clock, so a guest sees it in the time it reads.
 */
export interface CpuState {
  readonly reg: number[];
  eip: number;
  eflags: number;
  readonly segSel: number[];
  readonly segBase: number[];
  readonly segLimit: number[];
  readonly segHi: number[];
  readonly segFlags: number[];
  readonly gdtBase: number;
  readonly gdtLimit: number;
  readonly idtBase: number;
  readonly idtLimit: number;
  readonly ldtSel: number;
  readonly ldtBase: number;
  readonly ldtLimit: number;
  readonly ldtUsable: boolean;
  readonly trSel: number;
  readonly trBase: number;
  readonly trLimit: number;
  readonly trUsable: boolean;
  readonly cr0: number;
  readonly cr2: number;
  readonly cr3: number;
  readonly cr4: number;
  readonly paging: boolean;
  readonly writeProtect: boolean;
  readonly halted: boolean;
  interruptShadow: boolean;
  readonly shutdown: boolean;
  /** Instructions retired: the devices' clock (machine.ts), so what the guest reads of time. */
  instructions: number;
}

export function cpuState(cpu: Cpu): CpuState {
  return {
    reg: Array.from(cpu.reg, (x) => x >>> 0),
    eip: cpu.eip >>> 0,
    eflags: cpu.eflags >>> 0,
    segSel: Array.from(cpu.segSel),
    segBase: Array.from(cpu.segBase),
    segLimit: Array.from(cpu.segLimit),
    segHi: Array.from(cpu.segHi),
    segFlags: Array.from(cpu.segFlags),
    gdtBase: cpu.gdtBase >>> 0,
    gdtLimit: cpu.gdtLimit,
    idtBase: cpu.idtBase >>> 0,
    idtLimit: cpu.idtLimit,
    ldtSel: cpu.ldtSel,
    ldtBase: cpu.ldtBase >>> 0,
    ldtLimit: cpu.ldtLimit >>> 0,
    ldtUsable: cpu.ldtUsable,
    trSel: cpu.trSel,
    trBase: cpu.trBase >>> 0,
    trLimit: cpu.trLimit >>> 0,
    trUsable: cpu.trUsable,
    cr0: cpu.cr0 >>> 0,
    cr2: cpu.mmu.cr2 >>> 0,
    cr3: cpu.mmu.cr3 >>> 0,
    cr4: cpu.cr4 >>> 0,
    paging: cpu.mmu.paging,
    writeProtect: cpu.mmu.writeProtect,
    halted: cpu.halted,
    interruptShadow: cpu.interruptShadow,
    shutdown: cpu.shutdown,
    instructions: cpu.instructions,
  };
}

/** What one run left for the guest to see. */
export interface Outcome {
  readonly result: MachineRunResult;
  readonly transcript: string;
  readonly cpu: CpuState;
  readonly ram: Uint8Array;
}

function outcome(m: Machine, result: MachineRunResult, cpu: Cpu, ram: Uint8Array): Outcome {
  return { result, transcript: m.console.transcript(), cpu: cpuState(cpu), ram };
}

/** The bare machine, optionally stopped before the instruction at linear `stopAt`. */
export class BareRun {
  readonly machine: Machine;

  constructor(rom: Rom) {
    this.machine = createMachine({ rom: rom.bytes, clock: () => 0, ramBytes: RAM_BYTES });
  }

  run(budget: number, stopAt?: number): Outcome {
    const cpu = this.machine.cpu;
    cpu.breakpoints.clear();
    if (stopAt !== undefined) cpu.breakpoints.add(stopAt);
    const r = this.machine.run(budget);
    cpu.breakpoints.clear();
    return outcome(this.machine, r, cpu, this.machine.phys.ram.slice());
  }
}

/**
 * How a VE runs the guest's GDT: the SDT policies of the issue (P1, P2, P3), the adaptive choice, or
 * VEDT substitution with either write method (no SDTs for the GDT).
 */
export type VeConfig = SdtPolicy | 'adaptive' | 'vedt-trap' | 'vedt-overwrite';

export const VE_CONFIGS: readonly VeConfig[] = ['P1', 'P2', 'P3', 'adaptive', 'vedt-trap', 'vedt-overwrite'];

function profileOf(config: VeConfig): Pick<VeProfile, 'sdtPolicy' | 'vedt'> {
  if (config === 'vedt-trap' || config === 'vedt-overwrite') {
    return {
      vedt: { mode: 'current-ring', method: config === 'vedt-trap' ? 'trap' : 'overwrite', guard: true },
    };
  }
  return { sdtPolicy: config };
}

/** One VE on a VM manager (reused between programs: a VE is created and deleted per program). */
export class VeRun {
  readonly ve: VirtualEnvironment;

  constructor(
    readonly vmm: Vmm,
    rom: Rom,
    config: VeConfig,
  ) {
    this.ve = vmm.createVe({ name: 'fuzz', memoryBytes: RAM_BYTES, rom: rom.bytes, ...profileOf(config) });
    checkSystemCalls(this.ve, vmm.machine.cpu);
  }

  run(budget: number, stopAt?: number): Outcome {
    const cpu = this.vmm.machine.cpu;
    cpu.breakpoints.clear();
    if (stopAt !== undefined) cpu.breakpoints.add(stopAt);
    try {
      const r = this.vmm.run(this.ve.id, budget);
      // The guest's view of its RAM: under VEDT substitution its GDT pages hold the substituted
      // entries, which its reads never see (they trap and are answered from the guest view).
      return outcome(this.ve.vm, r, this.ve.vcpu, this.ve.guestRam());
    } finally {
      cpu.breakpoints.clear();
    }
  }

  delete(): void {
    this.vmm.deleteVe(this.ve.id);
  }
}

/**
 * The system-call short path (ve.ts `systemCall`) writes back to the real CPU only what an INT's
 * delivery changes; a full `realize` after it must change nothing. Checked at every system call the
 * fuzz programs make: the counts and the first differences found are here.
 */
export const systemCallCheck = { shortPaths: 0, differences: [] as string[] };

interface VeInternals {
  systemCall(vector: number): boolean;
  realize(): void;
  readonly lastSel: Uint16Array;
  readonly lastBase: Uint32Array;
  readonly lastLimit: Uint32Array;
  readonly lastHi: Uint32Array;
}

function checkSystemCalls(ve: VirtualEnvironment, cpu: Cpu): void {
  const v = ve as unknown as VeInternals;
  const shortPath = v.systemCall.bind(v);
  const real = () =>
    JSON.stringify({
      ...cpuState(cpu),
      last: [v.lastSel, v.lastBase, v.lastLimit, v.lastHi].map((a) => Array.from(a)),
    });
  v.systemCall = (vector: number) => {
    if (!shortPath(vector)) return false;
    systemCallCheck.shortPaths++;
    const left = real();
    v.realize();
    const full = real();
    if (left !== full && systemCallCheck.differences.length < 5) {
      systemCallCheck.differences.push(`INT 0x${vector.toString(16)}: ${left} / realize: ${full}`);
    }
    return true;
  };
}

export function newVmm(): Vmm {
  return new Vmm({ clock: () => 0, ramBytes: 6 << 20 });
}

// ---- comparison ----

/** One difference between the bare and the virtualized outcome. */
export interface Difference {
  readonly where: string;
  readonly bare: string;
  readonly ve: string;
}

const h = (n: number): string => `0x${(n >>> 0).toString(16)}`;

/** The fields of two CPU states that differ, by name (`segSel[1]`, `reg[0]`, ...). */
export function cpuDifferences(a: CpuState, b: CpuState): Difference[] {
  const out: Difference[] = [];
  for (const key of Object.keys(a) as (keyof CpuState)[]) {
    const x = a[key];
    const y = b[key];
    if (Array.isArray(x) && Array.isArray(y)) {
      x.forEach((v, i) => {
        if (v !== y[i]) out.push({ where: `${key}[${i}]`, bare: h(v), ve: h(y[i]!) });
      });
    } else if (x !== y) {
      out.push({
        where: key,
        bare: String(typeof x === 'number' ? h(x) : x),
        ve: String(typeof y === 'number' ? h(y) : y),
      });
    }
  }
  return out;
}

/** The guest-physical addresses of the dwords in which two RAM images differ. */
export function ramDifferences(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  const x = new Int32Array(a.buffer, a.byteOffset, a.length >>> 2);
  const y = new Int32Array(b.buffer, b.byteOffset, b.length >>> 2);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) out.push(i * 4);
  return out;
}

export const dword = (ram: Uint8Array, at: number): number =>
  (ram[at]! | (ram[at + 1]! << 8) | (ram[at + 2]! << 16) | (ram[at + 3]! << 24)) >>> 0;

export function resultDifferences(a: MachineRunResult, b: MachineRunResult): Difference[] {
  const out: Difference[] = [];
  for (const key of ['reason', 'executed', 'idle', 'vector', 'errorCode'] as const) {
    if (a[key] !== b[key]) out.push({ where: `result.${key}`, bare: String(a[key]), ve: String(b[key]) });
  }
  return out;
}

export function transcriptDifference(a: string, b: string): Difference[] {
  if (a === b) return [];
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return [
    {
      where: `transcript from char ${i}`,
      bare: JSON.stringify(a.slice(i, i + 80)),
      ve: JSON.stringify(b.slice(i, i + 80)),
    },
  ];
}
