/**
 * The CPU's architectural state as bytes (issue 3: the whole machine saves to bytes and restores).
 * Host configuration (exit vectors, breakpoints, trace hook) is not state and is not saved. The TLB
 * is not saved either: restoring flushes it, which is invisible to the guest.
 */
import type { Cpu } from './cpu.js';

const MAGIC = 0x31555043; // "CPU1"
const BYTES = 4 + 8 * 4 + 4 + 4 + 6 * (2 + 4 + 4 + 4 + 1) + 4 * 12 + 4 * 4 + 1 + 8;

export function saveCpu(cpu: Cpu): Uint8Array {
  const out = new Uint8Array(BYTES);
  const v = new DataView(out.buffer);
  let at = 0;
  const u32 = (x: number) => {
    v.setUint32(at, x >>> 0, true);
    at += 4;
  };
  u32(MAGIC);
  for (let i = 0; i < 8; i++) u32(cpu.reg[i]!);
  u32(cpu.eip);
  u32(cpu.eflags);
  for (let s = 0; s < 6; s++) {
    v.setUint16(at, cpu.segSel[s]!, true);
    at += 2;
    u32(cpu.segBase[s]!);
    u32(cpu.segLimit[s]!);
    u32(cpu.segHi[s]!);
    v.setUint8(at++, cpu.segFlags[s]!);
  }
  for (const x of [
    cpu.gdtBase,
    cpu.gdtLimit,
    cpu.idtBase,
    cpu.idtLimit,
    cpu.ldtSel,
    cpu.ldtBase,
    cpu.ldtLimit,
    cpu.trSel,
    cpu.trBase,
    cpu.trLimit,
    cpu.cr0,
    cpu.cr4,
  ])
    u32(x);
  u32(cpu.mmu.cr2);
  u32(cpu.mmu.cr3);
  u32(cpu.instructions % 0x1_0000_0000);
  u32(Math.floor(cpu.instructions / 0x1_0000_0000));
  const bits =
    (cpu.ldtUsable ? 1 : 0) |
    (cpu.trUsable ? 2 : 0) |
    (cpu.halted ? 4 : 0) |
    (cpu.interruptShadow ? 8 : 0) |
    (cpu.shutdown ? 16 : 0);
  v.setUint8(at++, bits);
  return out.subarray(0, at);
}

export function restoreCpu(cpu: Cpu, bytes: Uint8Array): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || v.getUint32(0, true) !== MAGIC) throw new RangeError('not a CPU snapshot');
  let at = 4;
  const u32 = () => {
    const x = v.getUint32(at, true);
    at += 4;
    return x;
  };
  for (let i = 0; i < 8; i++) cpu.reg[i] = u32();
  cpu.eip = u32();
  cpu.eflags = u32();
  for (let s = 0; s < 6; s++) {
    cpu.segSel[s] = v.getUint16(at, true);
    at += 2;
    cpu.segBase[s] = u32();
    cpu.segLimit[s] = u32();
    cpu.segHi[s] = u32();
    cpu.segFlags[s] = v.getUint8(at++);
  }
  cpu.gdtBase = u32();
  cpu.gdtLimit = u32();
  cpu.idtBase = u32();
  cpu.idtLimit = u32();
  cpu.ldtSel = u32();
  cpu.ldtBase = u32();
  cpu.ldtLimit = u32();
  cpu.trSel = u32();
  cpu.trBase = u32();
  cpu.trLimit = u32();
  cpu.cr0 = u32();
  cpu.cr4 = u32();
  cpu.mmu.cr2 = u32();
  cpu.mmu.cr3 = u32();
  cpu.instructions = u32() + u32() * 0x1_0000_0000;
  const bits = v.getUint8(at++);
  cpu.ldtUsable = (bits & 1) !== 0;
  cpu.trUsable = (bits & 2) !== 0;
  cpu.halted = (bits & 4) !== 0;
  cpu.interruptShadow = (bits & 8) !== 0;
  cpu.shutdown = (bits & 16) !== 0;
  cpu.mmu.paging = (cpu.cr0 & 0x8000_0000) !== 0;
  cpu.mmu.writeProtect = (cpu.cr0 & 0x1_0000) !== 0;
  cpu.mmu.flush();
  if (at !== bytes.length) throw new RangeError(`CPU snapshot of ${bytes.length} bytes, expected ${at}`);
}
