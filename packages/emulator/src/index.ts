/**
 * @clefnet/emulator: the ANC machine. A four-ring protected-mode CPU with the x86 protection rules
 * on a fixed-width encoding (docs/isa.md), an MMU with two-level paging, devices behind an I/O bus.
 */

export * from './asm/index.js';
export type { CpuOptions, RunResult, StopReason } from './cpu/cpu.js';
export { Cpu, SEG_EXEC, SEG_READ, SEG_USABLE, SEG_WRITE } from './cpu/cpu.js';
export * from './cpu/descriptor.js';
export {
  commandLineBudget,
  commandLineFlag,
  commandLineSwitch,
  type EngineSettings,
  engineSettings,
  INLINE_BUDGET,
  raiseInliningBudget,
  TIER_UP_WAIT,
} from './cpu/engine.js';
export { raise, run } from './cpu/exec.js';
export { CpuFault, fault, hasErrorCode, selErr, VEC, VECTOR_NAMES } from './cpu/faults.js';
export { CR0, CR4, FL } from './cpu/flags.js';
export * from './cpu/isa.js';
export { restoreCpu, saveCpu } from './cpu/snapshot.js';
export { CRC32_START, crc32, crc32Finish, crc32Update } from './crc32.js';
export type { InterruptSource, PortDevice, Snapshotting, Ticking } from './devices/bus.js';
export { IoBus } from './devices/bus.js';
export type { ConsoleOptions } from './devices/console.js';
export { ConsoleDevice } from './devices/console.js';
export {
  CRYPTO_COMMAND,
  CRYPTO_DEFAULT_BASE,
  CRYPTO_ERROR,
  CRYPTO_PORT,
  CryptoDevice,
  type CryptoDeviceOptions,
} from './devices/cryptodev.js';
export type { BlockBackend, DiskOptions } from './devices/disk.js';
export { Disk, fileBlockBackend, memoryBlockBackend, SECTOR_SIZE } from './devices/disk.js';
export type { Dma } from './devices/dma.js';
export { arrayDma } from './devices/dma.js';
export { DeviceError } from './devices/errors.js';
export { Nic } from './devices/nic.js';
export type { NvramBackend } from './devices/nvram.js';
export { fileNvramBackend, memoryNvramBackend, Nvram } from './devices/nvram.js';
export { Pic } from './devices/pic.js';
export { Rtc } from './devices/rtc.js';
export { Timer } from './devices/timer.js';
export * from './disk/index.js';
export * from './dtm/index.js';
export type { MachineOptions, MachineRunResult } from './machine.js';
export { createMachine, Machine } from './machine.js';
export { Mmu } from './memory/mmu.js';
export type { PhysicalMemoryOptions } from './memory/physical.js';
export { PhysicalMemory } from './memory/physical.js';
export type { TraceEntry } from './trace.js';
export { formatTrace, startTrace } from './trace.js';
export * from './vmm/index.js';
