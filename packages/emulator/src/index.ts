/**
 * @clefnet/emulator: the ANC machine. A four-ring protected-mode CPU with the x86 protection rules
 * on a fixed-width encoding (docs/isa.md), an MMU with two-level paging, devices behind an I/O bus.
 */

export type { CpuOptions, RunResult, StopReason } from './cpu/cpu.js';
export { Cpu, SEG_EXEC, SEG_READ, SEG_USABLE, SEG_WRITE } from './cpu/cpu.js';
export * from './cpu/descriptor.js';
export { raise, run } from './cpu/exec.js';
export { CpuFault, fault, hasErrorCode, selErr, VEC, VECTOR_NAMES } from './cpu/faults.js';
export { CR0, CR4, FL } from './cpu/flags.js';
export * from './cpu/isa.js';
export type { InterruptSource, PortDevice, Snapshotting, Ticking } from './devices/bus.js';
export { IoBus } from './devices/bus.js';
export { Mmu } from './memory/mmu.js';
export type { PhysicalMemoryOptions } from './memory/physical.js';
export { PhysicalMemory } from './memory/physical.js';
