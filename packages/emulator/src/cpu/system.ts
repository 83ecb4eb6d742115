/**
 * System instructions: descriptor-table and task registers, control registers, the TLB, port I/O
 * with the TSS I/O permission bitmap, and the sensitive-but-unprivileged inspection instructions
 * LAR, LSL, VERR, VERW, SGDT, SIDT, SLDT, STR, SMSW (reference §3.6). Privilege is checked first.
 */
import type { Cpu } from './cpu.js';
import {
  isCode,
  isConforming,
  isData,
  isReadableCode,
  isWritableData,
  segLimit,
  TSS,
  TYPE,
} from './descriptor.js';
import { fault, selErr, VEC } from './faults.js';
import { CR0, CR4, FL } from './flags.js';
import { memEa, memSeg } from './operands.js';
import { descriptorAddress, fetchDescriptor, peekDescriptor } from './segments.js';

const setZf = (cpu: Cpu, on: boolean): void => {
  cpu.eflags = on ? (cpu.eflags | FL.ZF) >>> 0 : (cpu.eflags & ~FL.ZF) >>> 0;
};

/** Whether a descriptor is visible to LAR/LSL/VERR/VERW at CPL with this RPL. */
function visible(cpu: Cpu, selector: number, dpl: number, conformingCode: boolean): boolean {
  return conformingCode || (dpl >= cpu.cpl && dpl >= (selector & 3));
}

/** UMIP (CR4 bit 11): the store instructions fault at CPL > 0. */
function umip(cpu: Cpu): void {
  if (cpu.cpl > 0 && cpu.cr4 & CR4.UMIP) throw fault(VEC.GP, 0);
}

/**
 * IN/OUT at CPL > IOPL: every bit of the dword's 4 ports must be clear in the TSS bitmap (SDM
 * §18.5.2). The processor reads the bitmap two bytes at a time, so the byte after the one holding a
 * port's bit must also lie within the TSS limit; in particular a map base >= the limit means "no
 * map", and every port faults.
 */
function checkPort(cpu: Cpu, port: number): void {
  if (!ioAllowed(cpu, port)) throw fault(VEC.GP, 0);
}

/**
 * Whether IN/OUT of the dword at `port` is allowed at the current CPL (checkPort without the
 * throw: the run loop uses it to leave for a VM manager without raising an exception, exec.ts).
 */
export function ioAllowed(cpu: Cpu, port: number): boolean {
  if (cpu.cpl <= cpu.iopl) return true;
  if (!cpu.trUsable || cpu.trLimit < TSS.IOMAP + 1) return false;
  const w = cpu.readSystem32((cpu.trBase + TSS.IOMAP - 2) >>> 0);
  const mapBase = w >>> 16;
  for (let p = port; p < port + 4; p++) {
    const at = mapBase + (p >>> 3);
    if (at + 1 > cpu.trLimit) return false;
    const byte = cpu.readSystem32((cpu.trBase + at) >>> 0) & 0xff;
    if ((byte >>> (p & 7)) & 1) return false;
  }
  return true;
}

function readPseudo(cpu: Cpu, seg: number, off: number): { limit: number; base: number } {
  const limit = cpu.read8(seg, off) | (cpu.read8(seg, (off + 1) >>> 0) << 8);
  const base = cpu.read32(seg, (off + 2) >>> 0);
  return { limit, base };
}

function writePseudo(cpu: Cpu, seg: number, off: number, limit: number, base: number): void {
  cpu.linear(seg, off, 6, true); // the whole operand is checked before the first byte is stored
  cpu.write8(seg, off, limit & 0xff);
  cpu.write8(seg, (off + 1) >>> 0, (limit >>> 8) & 0xff);
  cpu.write32(seg, (off + 2) >>> 0, base);
}

export function systemOp(cpu: Cpu, op: number, a: number, b: number, c: number, imm: number): void {
  const reg = cpu.reg;
  switch (op) {
    case 0x84:
    case 0x85: {
      // LAR / LSL
      const sel = reg[b & 7]! & 0xffff;
      const d = peekDescriptor(cpu, sel);
      let ok = false;
      if (d !== undefined) {
        const sys =
          !d.s &&
          (d.type === TYPE.LDT ||
            d.type === TYPE.TSS ||
            d.type === TYPE.TSS_BUSY ||
            (op === 0x84 && d.type === TYPE.CALL_GATE));
        ok = (d.s || sys) && visible(cpu, sel, d.dpl, isConforming(d));
        // LAR: the access-rights fields only (AVL, G, type, S, DPL, P: bits 22-31 of our layout), as
        // x86 masks dword 1 with 00FxFF00H; a call gate's parameter count (bits 16-20) stays hidden.
        if (ok) reg[a & 7] = op === 0x84 ? (d.hi & 0xffc0_0000) | 0 : segLimit(d) | 0;
      }
      setZf(cpu, ok);
      return;
    }
    case 0x86:
    case 0x87: {
      // VERR / VERW
      const sel = reg[a & 7]! & 0xffff;
      const d = peekDescriptor(cpu, sel);
      const ok =
        d !== undefined &&
        (op === 0x86 ? isData(d) || isReadableCode(d) : isWritableData(d)) &&
        visible(cpu, sel, d.dpl, op === 0x86 && isCode(d) && isConforming(d));
      setZf(cpu, ok);
      return;
    }
    case 0x90:
    case 0x91: {
      const seg = memSeg(c, b); // decoding (#UD) comes before the privilege check (SDM Table 6-2)
      cpu.requireCpl0();
      const t = readPseudo(cpu, seg, memEa(reg, b, imm));
      if (op === 0x90) {
        cpu.gdtBase = t.base;
        cpu.gdtLimit = t.limit;
      } else {
        cpu.idtBase = t.base;
        cpu.idtLimit = t.limit;
      }
      return;
    }
    case 0x92:
    case 0x93: {
      const seg = memSeg(c, b);
      umip(cpu);
      if (op === 0x92) writePseudo(cpu, seg, memEa(reg, b, imm), cpu.gdtLimit, cpu.gdtBase);
      else writePseudo(cpu, seg, memEa(reg, b, imm), cpu.idtLimit, cpu.idtBase);
      return;
    }
    case 0x94: {
      cpu.requireCpl0();
      const sel = reg[a & 7]! & 0xffff;
      if ((sel & 0xfffc) === 0) {
        cpu.ldtSel = sel;
        cpu.ldtUsable = false;
        return;
      }
      if (sel & 4) throw fault(VEC.GP, selErr(sel));
      const d = fetchDescriptor(cpu, sel);
      if (d.s || d.type !== TYPE.LDT) throw fault(VEC.GP, selErr(sel));
      if (!d.present) throw fault(VEC.NP, selErr(sel));
      cpu.ldtSel = sel;
      cpu.ldtBase = d.lo;
      cpu.ldtLimit = segLimit(d);
      cpu.ldtUsable = true;
      return;
    }
    case 0x95:
      umip(cpu);
      reg[a & 7] = cpu.ldtSel;
      return;
    case 0x96: {
      cpu.requireCpl0();
      const sel = reg[a & 7]! & 0xffff;
      if ((sel & 0xfffc) === 0) throw fault(VEC.GP, 0);
      if (sel & 4) throw fault(VEC.GP, selErr(sel));
      const d = fetchDescriptor(cpu, sel);
      if (d.s || d.type !== TYPE.TSS || segLimit(d) < TSS.MIN_LIMIT) throw fault(VEC.GP, selErr(sel));
      if (!d.present) throw fault(VEC.NP, selErr(sel));
      const at = descriptorAddress(cpu, sel);
      cpu.writeSystem32((at + 4) >>> 0, (d.hi | (0x2 << 24)) >>> 0); // mark busy
      cpu.trSel = sel;
      cpu.trBase = d.lo;
      cpu.trLimit = segLimit(d);
      cpu.trUsable = true;
      return;
    }
    case 0x97:
      umip(cpu);
      reg[a & 7] = cpu.trSel;
      return;
    case 0x98: {
      if (a > 4) throw fault(VEC.UD); // no such control register (decoding, before privilege)
      cpu.requireCpl0();
      const v = reg[b & 7]! >>> 0;
      writeControl(cpu, a, v);
      return;
    }
    case 0x99:
      if (b > 4) throw fault(VEC.UD);
      cpu.requireCpl0();
      reg[a & 7] = readControl(cpu, b);
      return;
    case 0x9a:
      umip(cpu);
      reg[a & 7] = cpu.cr0 & 0xffff;
      return;
    case 0x9b: {
      const seg = memSeg(c, b);
      cpu.requireCpl0();
      cpu.mmu.invalidate((cpu.segBase[seg]! + memEa(reg, b, imm)) >>> 0);
      return;
    }
    case 0x9c:
      cpu.requireCpl0();
      cpu.cr0 = (cpu.cr0 & ~CR0.TS) >>> 0;
      return;
    case 0xa4:
    case 0xa5: {
      const port = op === 0xa4 ? imm & 0xffff : reg[b & 7]! & 0xffff;
      checkPort(cpu, port);
      reg[a & 7] = cpu.io.read(port);
      return;
    }
    case 0xa6:
    case 0xa7: {
      const port = op === 0xa6 ? imm & 0xffff : reg[a & 7]! & 0xffff;
      const value = op === 0xa6 ? reg[a & 7]! : reg[b & 7]!;
      checkPort(cpu, port);
      cpu.io.write(port, value >>> 0);
      return;
    }
    default:
      throw fault(VEC.UD);
  }
}

export function readControl(cpu: Cpu, n: number): number {
  switch (n) {
    case 0:
      return cpu.cr0 | 0;
    case 2:
      return cpu.mmu.cr2 | 0;
    case 3:
      return cpu.mmu.cr3 | 0;
    case 4:
      return cpu.cr4 | 0;
    default:
      throw fault(VEC.UD);
  }
}

export function writeControl(cpu: Cpu, n: number, v: number): void {
  switch (n) {
    case 0: {
      const value = (v | CR0.PE | CR0.ET) >>> 0; // no real mode on this machine: PE stays set
      const pagingChanged = ((value ^ cpu.cr0) & CR0.PG) !== 0;
      cpu.cr0 = value;
      cpu.mmu.paging = (value & CR0.PG) !== 0;
      cpu.mmu.writeProtect = (value & CR0.WP) !== 0;
      if (pagingChanged) cpu.mmu.flush();
      return;
    }
    case 2:
      cpu.mmu.cr2 = v;
      return;
    case 3:
      cpu.mmu.cr3 = v;
      cpu.mmu.flush();
      return;
    case 4:
      cpu.cr4 = (v & (CR4.SFT | CR4.TSD | CR4.UMIP)) >>> 0;
      return;
    default:
      throw fault(VEC.UD);
  }
}
