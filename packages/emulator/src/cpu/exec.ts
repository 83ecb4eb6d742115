/**
 * The run loop and the instruction switch. One instruction: check for a host breakpoint, take a
 * pending external interrupt if IF allows, fetch 8 bytes at CS:EIP (limit-checked, through the
 * MMU), execute. Faults thrown by an instruction leave EIP at that instruction (restartable) and
 * are delivered through the IDT, or stop the run when the vector is in `exitVectors`.
 *
 * Speed (issue 3): this loop runs for every instruction, so it allocates nothing and creates no
 * closures; the fetch reads a cached code window as dwords; every ordinary instruction is a case of
 * one switch, with its flags computed inline (branch-free), and the rest run out of line (`other`:
 * a smaller loop function compiles sooner, so a run reaches optimised code sooner); dword loads and
 * stores through DS and SS (LD, ST, PUSH, POP, CALL, RET) check rights, limit and the TLB inline
 * against values the prologue caches (with paging on, the page of the last such read and write is
 * kept until the next prologue, so a loop over one page looks the TLB up once per prologue), and
 * take `Cpu.read32`/`write32` for anything else; far transfers and segment loads try the
 * specialised common cases of fast-transfers.ts first. Nothing here skips a check: the fast paths
 * are the general rules specialised to the common case, and anything else takes the general path,
 * which checks in the architectural order. Decoding is strict (isa.ts): each case first tests its
 * instruction's must-be-zero bits.
 */
import type { Cpu, RunResult } from './cpu.js';
import {
  callGateFast,
  deliverFast,
  farReturnFast,
  interruptReturnFast,
  loadDataSegmentFast,
} from './fast-transfers.js';
import { CpuFault, fault, isContributory, VEC } from './faults.js';
import { FL } from './flags.js';
import { MBZ, MEM_SEGMENT, NO_BASE } from './isa.js';
import { type Block, type Link, NONE, readEnd, writeEnd } from './jit.js';
import { loadSegment } from './segments.js';
import { ioAllowed, systemOp } from './system.js';
import { deliver, farReturn, farTransfer, interruptReturn, mergeFlags } from './transfers.js';

// The hot code writes flag bits and segment numbers as literals or function-local constants: a
// module-level object (FL, S) or constant is loaded again, with a check, at every use in optimised
// code. CF 0x1, ZF 0x40, SF 0x80, IF 0x200, OF 0x800 (flags.ts); ES 0, CS 1, SS 2, DS 3 (isa.ts).

/**
 * Runs up to `budget` instructions.
 *
 * Before an instruction the loop takes the full prologue (shutdown, pending interrupt, HLT,
 * breakpoint, interrupt shadow, the beforeStep hook) only when something it looks at may have
 * changed: at the start of the run, after an instruction that is not *ordinary*, after a fault, and
 * for every instruction while a host hook or breakpoint is set or an interrupt source without
 * `hasPending` (bus.ts) is polled. Ordinary instructions (data movement, ALU, near branches, PUSH
 * and POP of data) change none of it and reach no device, so between two prologues the answers
 * cannot change. After a far transfer or a data segment load only the segment part of it runs
 * (LIGHT, see `slow`), as it does every CHUNK ordinary instructions (see `stop`); a MOV of DS, ES,
 * FS or GS that the fast path takes needs not even that: the inner loop sets DS's cached bounds
 * itself and goes on (the mixed workload of bench/cpu.ts, one MOV DS in 51 instructions, ran about
 * 2% faster for it in paired runs). The prologue also caches what ordinary instructions need (the
 * CS limit, CPL, the DS and SS rights and limits, paging) and checks the *code window*: the EIPs
 * whose 8 bytes lie in one RAM page inside the CS limit, fetched without translation while the CS
 * base, limit, CPL, paging and MMU generation it was built for stay the same. Every check still runs for every instruction, against these cached
 * values.
 *
 * V8 notes: everything before the loop is a constant, and the typed arrays are loaded from `cpu`
 * inside it, so that the loop's on-stack-replacement code knows them (why the whole function must
 * still be optimised: `stop`). EIP, the next EIP and the code window are int32 in the loop (`| 0`;
 * stored back as `>>> 0`): an unsigned EIP of 2^31 or more would make V8 keep them as boxed or
 * tagged values with checks at every use. The prologue runs at every turn of the outer loop, so V8
 * sees that no cached value lives across a turn or a caught fault and keeps them unboxed.
 */
export function run(cpu: Cpu, budget: number): RunResult {
  const CF = 0x1;
  const ZF = 0x40;
  const SF = 0x80;
  const IF = 0x200;
  const OF = 0x800;
  const SS = 2;
  /** The most instructions the inner loop runs before it ends for a LIGHT prologue (`stop`). */
  const CHUNK = 1024;
  let executed = 0;
  // cpu.instructions is not counted per instruction: `executed - counted` instructions are added
  // before anything outside this loop can look at it (the prologue's hooks and interrupt source,
  // port I/O, the trace hook, a host error, the return).
  let counted = 0;
  /**
   * What the next instruction needs first: 0 nothing (ordinary instructions), 1 the segment part of
   * the prologue (LIGHT: a segment register or CS changed, or CHUNK ordinary instructions ran,
   * nothing else the prologue looks at), 3 the full prologue (FULL; `slow |= 1` keeps a FULL).
   */
  let slow = 3;
  /** EIP of the instruction being executed (before the beforeStep hook ran). */
  let start = 0;
  let eip = 0;
  // The code window (the current one of cpu.winA and winB, see CodeWindow in cpu.ts): an EIP with
  // EIP - codeLo < codeLen fetches from RAM at EIP + codeDelta (modulo 2^32).
  let codeLo = 0;
  let codeLen = 0;
  let codeDelta = 0;
  // Cached by the prologue for ordinary instructions: the CS limit; paging as the TLB entry bits a
  // read (bits 0-7) and a write (8-15) need (-1: paging off; U for CPL 3; a write also needs the
  // dirty bit, and W at CPL 3 or with CR0.WP: Mmu.translate's rules); for DS and SS the
  // base and the end (exclusive) of the offsets at which a dword may be read or written (0: none;
  // the general path then raises the fault).
  let csLimit = 0;
  let pgNeed = -1;
  let dsBase = 0;
  let dsRdEnd = 0;
  let dsWrEnd = 0;
  let ssBase = 0;
  let ssRdEnd = 0;
  let ssWrEnd = 0;
  // With paging on, the page (-1: none) a dword was last read from and written to through the
  // inline paths, and its frame, from a TLB hit that allowed the access: so both are entries the TLB
  // holds. They are dropped by every prologue (only an instruction that is not ordinary, or the
  // host between runs, can flush or invalidate the TLB, change CPL or CR0.WP) and before every
  // access that may walk the page tables (the general paths Cpu.read32 and the like, a code fetch
  // outside the window), which can replace an entry: so a load always sees the frame the last
  // store to its address went to, as one TLB would give.
  let rdPage = -1;
  let rdFrame = 0;
  let wrPage = -1;
  let wrFrame = 0;
  /**
   * The inner loop also ends after CHUNK instructions (then a LIGHT prologue runs, which costs
   * about as much as one instruction). This is for V8, not the machine: it changes nothing the
   * guest or the host sees. Observed (--trace-opt, --trace-deopt, %GetOptimizationStatus): V8
   * optimised this function while its first call was still in the inner loop, before the store to
   * `cpu.endRun` above had type feedback, so that code was dropped at the next call (a deopt), and
   * later calls entered the inner loop's on-stack-replacement code from baseline code. In 9 of 30
   * processes V8 had not optimised the function again seconds later, and the compute loop of
   * bench/cpu.ts ran at 0.42 of the bare loop's speed instead of 0.56-0.64. With the inner loop
   * ending every CHUNK instructions, 0 of 30 processes stayed there: a measured fact about V8's
   * tiering heuristics, which may change with V8 (bench/cpu.ts shows it: the compute figure).
   *
   * `stop` is also how the inner loop learns that the next instruction needs a prologue: a
   * prologue that must run again (`slow`) sets it one instruction ahead, and an instruction that
   * is not ordinary sets it to 0, so the loop tests one bound per instruction instead of `slow` and
   * the bound (the compute loop 1.02x, the mixed workload 1.01-1.03x, in paired runs).
   */
  let stop = 0;
  // The block that ran last, where it was entered, where it ended, whether with a far transfer: if
  // the next instruction starts a block, the run loop tells the block compiler (Jit.relink, trace).
  let last: Block | null = null;
  let lastTo = 0;
  let lastEip = 0;
  let lastFar = false;
  const tracing = cpu.jit !== null && cpu.jit.traceHot !== 0;
  cpu.endRun = false;
  while (executed < budget) {
    // The inner loop ends only at `stop`: after an instruction that is not ordinary (but for the
    // data segment loads it takes itself, which need no prologue), when the budget is spent (and
    // then so does this loop) or after CHUNK instructions; and a fault is not ordinary: so the
    // prologue runs at every turn of this loop. Unconditional, it is where every cached
    // value below is set, and V8 sees that none of them lives across a turn or a caught fault, so
    // none needs boxing.
    {
      const full = slow === 3;
      // IF = 1 and a source with hasPending() that has nothing pending: no need to ask it again
      // below, since nothing can have run in between (the beforeStep hook makes `slow` anyway).
      let quiet = false;
      if (!full) {
        // LIGHT, after a far transfer or a data segment load, or at `stop` after CHUNK ordinary
        // instructions (which changed none of it): nothing but the segment registers
        // (and ESP, EIP, EFLAGS but IF going from 0 to 1) changed, so the answers of the full part
        // are as before: no host hook or breakpoint (else it would be FULL), no interrupt to take
        // (else the last prologue had made it FULL), no shadow (only SS loads and STI set one, and
        // they are FULL), nothing reached a device.
        start = eip;
      } else {
        cpu.instructions += executed - counted;
        counted = executed;
        // A device access asked to end the run after its instruction (cpu.endRun; port I/O is never
        // ordinary, so the prologue runs after it).
        if ((cpu.endRun as boolean) === true) {
          cpu.endRun = false;
          return { reason: 'budget', executed };
        }
        if (cpu.shutdown === true) return { reason: 'shutdown', executed };
        if ((cpu.eflags & IF) !== 0 && cpu.irq !== undefined) {
          const irq = cpu.irq;
          if (irq.hasPending !== undefined && irq.hasPending() !== true) quiet = true;
          else if (cpu.interruptShadow !== true) {
            const vector = irq.pending();
            if (vector >= 0) {
              irq.acknowledge(vector);
              const r = raise(cpu, vector, undefined, { software: false, ext: 1, returnEip: cpu.eip });
              if (r !== undefined) return { ...r, executed };
            }
          }
        }
        if (cpu.halted === true) return { reason: 'halt', executed };
        if (cpu.breakpoints.size > 0 && cpu.breakpoints.has((cpu.segBase[1]! + cpu.eip) >>> 0)) {
          return { reason: 'breakpoint', executed };
        }
        cpu.interruptShadow = false;
        start = cpu.eip | 0;
        if (cpu.beforeStep !== undefined) cpu.beforeStep(cpu);
        eip = cpu.eip | 0;
      }
      const segLimit = cpu.segLimit;
      const segBase = cpu.segBase;
      const segFlags = cpu.segFlags; // SEG_USABLE 1, SEG_READ 2, SEG_WRITE 4
      const mmu = cpu.mmu;
      csLimit = segLimit[1]!;
      const user = (cpu.segSel[1]! & 3) === 3;
      const paging = mmu.paging === true;
      pgNeed = paging
        ? (user ? 4 : 0) | ((0x40 | (user ? 4 : 0) | (user || mmu.writeProtect === true ? 2 : 0)) << 8)
        : -1;
      // The code window for this CS and CPL: the current one, else the other one (a call into the
      // kernel and the return each find theirs), else none until the next fetch builds it.
      const csBase = segBase[1]!;
      const gen = mmu.generation;
      let win = cpu.winCur === 0 ? cpu.winA : cpu.winB;
      if (!win.fits(csBase, csLimit, user, paging, gen)) {
        cpu.winCur ^= 1;
        win = cpu.winCur === 0 ? cpu.winA : cpu.winB;
        if (!win.fits(csBase, csLimit, user, paging, gen)) {
          win.len = 0;
          cpu.winEpoch++;
        }
      }
      codeLo = win.lo | 0;
      codeLen = win.len;
      codeDelta = win.delta;
      dsBase = segBase[3]!;
      dsRdEnd = readEnd(segFlags[3]!, segLimit[3]!);
      dsWrEnd = writeEnd(segFlags[3]!, segLimit[3]!);
      ssBase = segBase[2]!;
      ssRdEnd = readEnd(segFlags[2]!, segLimit[2]!);
      ssWrEnd = writeEnd(segFlags[2]!, segLimit[2]!);
      rdPage = -1;
      wrPage = -1;
      // What blocks (jit.ts) check against: as cached here (jitCtx's layout is jit.ts's CTX,
      // written with literal indices as the rest of this loop's constants are).
      cpu.jitPage = win.len > 0 ? win.jit : null;
      const ctx = cpu.jitCtx;
      ctx[0] = csLimit;
      ctx[1] = pgNeed;
      ctx[2] = dsBase;
      ctx[3] = dsRdEnd;
      ctx[4] = dsWrEnd;
      ctx[5] = ssBase;
      ctx[6] = ssRdEnd;
      ctx[7] = ssWrEnd;
      ctx[9] = 0; // a block that faulted may have left a DS load there
      stop = budget - executed > CHUNK ? executed + CHUNK : budget;
      const irq = cpu.irq;
      slow =
        full &&
        (cpu.breakpoints.size > 0 ||
          cpu.beforeStep !== undefined ||
          cpu.trace !== undefined ||
          ((cpu.eflags & IF) !== 0 &&
            irq !== undefined &&
            !quiet &&
            (irq.hasPending === undefined || irq.hasPending() === true)))
          ? 3
          : 0;
      if (slow !== 0) stop = executed + 1; // one instruction, then the prologue again
    }
    try {
      // Ordinary instructions run in this inner loop; it ends at `stop`, which an instruction that
      // is not ordinary sets to 0.
      for (;;) {
        // Loaded here, not before the loops: V8 may optimise just this loop (on-stack replacement),
        // and then knows nothing of values from before it.
        const reg = cpu.reg;
        const ram32 = cpu.ram32;
        // ---- fetch: 8 bytes at CS:EIP, limit-checked, through the MMU ----
        let w0: number;
        let imm: number;
        const d = (eip - codeLo) | 0;
        if (d >= 0 && d < codeLen) {
          const p = (eip + codeDelta) | 0;
          if ((p & 3) === 0) {
            // A compiled block (jit.ts) starts here: run it if the budget and the window hold all of
            // it; else count the visit, and compile one when the offset is hot.
            const jp = cpu.jitPage;
            if (jp !== null && (p & 7) === 0 && stop - executed > 1) {
              const k = (p & 0xfff) >>> 3;
              const blk = jp.blocks[k]!;
              if (blk.len <= stop - executed && d + 8 * (blk.len - 1) < codeLen) {
                if (last !== null) {
                  // the block the last one led to, with nothing between: a trace follows links
                  // (jit.ts Link) that the run loop keeps following
                  if (eip === lastTo) {
                    const link: Link | null = last.link;
                    if (link !== null && link.to === blk) {
                      const hits = ++link.hits;
                      if (hits >= cpu.jit!.traceHot && (hits & (hits - 1)) === 0) cpu.jit!.trace(last, ram32);
                    } else cpu.jit!.relink(last, blk, lastEip, eip, lastFar, cpu);
                  }
                  last = null;
                }
                const ctx = cpu.jitCtx;
                const to = blk.fn(cpu, ctx, eip, stop - executed);
                const ran = ctx[8]!;
                // jit.ts CTX.EXIT: 1 LIGHT, 3 FULL after a far transfer; 4 a data segment loaded; 8
                // declined; 16 | vector << 8 the run stops at a software interrupt
                const exit = ctx[9]!;
                if (exit >= 16) {
                  // stopped before a software interrupt that the host sees first, as `other` stops
                  // the run at one (jit.ts EXIT_SOFTWARE; the other bits are below 16), maybe at
                  // its first instruction (then `to` is `eip`)
                  ctx[9] = 0;
                  executed += ran;
                  cpu.jit!.ranCount[0]! += ran;
                  cpu.eip = to >>> 0;
                  cpu.instructions += executed - counted;
                  return { reason: 'exit', vector: (exit >>> 8) & 0xff, software: true, executed };
                }
                if (ran !== 0) {
                  executed += ran;
                  cpu.jit!.ranCount[0]! += ran;
                  if (tracing && blk.path === null) {
                    last = blk;
                    lastTo = to;
                    lastEip = eip;
                    lastFar = (exit & 3) !== 0;
                  }
                  eip = to;
                  rdPage = -1; // the block's general paths may have walked (see rdPage)
                  wrPage = -1;
                  if (exit !== 0) {
                    // (a block with no far transfer or segment load, most of them, leaves exit 0)
                    ctx[9] = 0;
                    // declined at its instruction ran % len (a block that loops in itself repeats
                    // whole); else past them all: not a block that keeps declining
                    if ((exit & 8) !== 0)
                      cpu.jit!.declined(jp, ram32, p, blk, ran % blk.len, cpu.mmu.tlbMisses);
                    else if (blk.declines !== 0 && ran >= blk.len) blk.declines = 0;
                    if ((exit & 4) !== 0) {
                      dsBase = ctx[2]!;
                      dsRdEnd = ctx[3]!;
                      dsWrEnd = ctx[4]!;
                    }
                    if ((exit & 3) !== 0) {
                      // after a far transfer, as after `other`: the prologue the next one needs
                      slow |= exit & 3;
                      cpu.eip = to >>> 0;
                      break;
                    }
                  }
                  if (executed >= stop) {
                    cpu.eip = to >>> 0;
                    break;
                  }
                  start = eip;
                  continue;
                }
                // Nothing ran: its first instruction's fast path declined (it runs here), or its
                // code changed (dropped; the instruction runs here).
                if (exit !== 0) {
                  ctx[9] = 0;
                  cpu.jit!.declined(jp, ram32, p, blk, 0, cpu.mmu.tlbMisses);
                } else cpu.jit!.drop(jp, p);
              } else if (blk === NONE) {
                const jit = cpu.jit!;
                if (++jp.hits[k]! >= jit.hot) jit.compile(jp, ram32, p, (codeLen - d + 7) >>> 3);
              }
            }
            w0 = ram32[p >>> 2]!;
            imm = ram32[(p >>> 2) + 1]! >>> 0;
          } else {
            w0 = cpu.mmu.phys.ramView.getUint32(p >>> 0, true) | 0;
            imm = cpu.mmu.phys.ramView.getUint32((p >>> 0) + 4, true) >>> 0;
          }
        } else {
          rdPage = -1; // the fetch may walk (see rdPage)
          wrPage = -1;
          const mmu = cpu.mmu;
          const ueip = eip >>> 0;
          const limit = cpu.segLimit[1]!;
          if (ueip + 7 > limit) throw fault(VEC.GP, 0);
          const base = cpu.segBase[1]!;
          const lin = (base + ueip) >>> 0;
          const u = (cpu.segSel[1]! & 3) === 3;
          w0 = cpu.readLinearI32(lin, u);
          imm = cpu.readLinearI32((lin + 4) >>> 0, u) >>> 0;
          const off = lin & 0xfff;
          const page = (mmu.translate(lin, false, u) - off) >>> 0;
          // The window: the EIPs of this page (offset <= 0xFF8) that are >= 0 and <= limit - 7.
          const lo = Math.max(0, ueip - off);
          const hi = Math.min(ueip - off + 0xff8, limit - 7);
          const win = cpu.winCur === 0 ? cpu.winA : cpu.winB;
          cpu.winEpoch++; // (traces keep which window the prologue picks while this stays: jit.ts WindowPick)
          if (page + 0x1000 <= cpu.ramBytes && hi >= lo) {
            codeLo = lo | 0;
            codeLen = (hi - lo + 1) | 0;
            codeDelta = (page + off - ueip) | 0;
            win.set(lo >>> 0, codeLen, codeDelta, base, limit, u, mmu.paging === true, mmu.generation);
            win.jit = cpu.jit === null ? null : cpu.jit.page(page);
            cpu.jitPage = win.jit;
            // This instruction again, through the new window, which looks for a block starting at
            // it: else the first instruction after every change of page in one code segment (a
            // near call to another page and its return) never would.
            if (ueip - lo < codeLen) continue;
          } else {
            codeLen = 0; // ROM or the empty bus: no window
            win.len = 0;
            win.jit = null;
            cpu.jitPage = null;
          }
        }
        // ---- decode and execute ----
        const op = w0 & 0xff;
        // Strict decoding (isa.ts, MBZ): every case first checks that the fields its instruction
        // does not use, and the bits past its operands' ranges, are 0, else #UD before anything
        // changes. Ordinary instructions test a literal mask of their operand layout (ENCODING
        // below lists them, checked against the table when this module loads; decode.test.ts
        // checks the cases themselves): a table lookup here would cost a fifth of the loop. The
        // rest of the rule (segment and control registers, a memory operand's base and segment)
        // is checked where those operands are decoded.
        const a = (w0 >>> 8) & 7; // register operands: 0..7 (bit 3 is must-be-zero)
        const b = (w0 >>> 12) & 0xf;
        const next = (eip + 8) | 0;
        let to = next;
        switch (op) {
          // ALU reg, reg (table order in isa.ts: add sub and or xor cmp test shl shr sar mul divu remu)
          case 0x20: {
            if (((w0 & 0xffff8800) | imm) !== 0) throw fault(VEC.UD); // reg, reg
            const x = reg[a]!;
            const y = reg[b & 7]!;
            const r = (x + y) | 0;
            reg[a] = r;
            cpu.eflags = addFlags(cpu.eflags, x, y, r);
            break;
          }
          case 0x21: {
            if (((w0 & 0xffff8800) | imm) !== 0) throw fault(VEC.UD); // reg, reg
            const x = reg[a]!;
            const y = reg[b & 7]!;
            const r = (x - y) | 0;
            reg[a] = r;
            cpu.eflags = subFlags(cpu.eflags, x, y, r);
            break;
          }
          case 0x22: {
            if (((w0 & 0xffff8800) | imm) !== 0) throw fault(VEC.UD); // reg, reg
            const r = reg[a]! & reg[b & 7]!;
            reg[a] = r;
            cpu.eflags = logicFlags(cpu.eflags, r);
            break;
          }
          case 0x23: {
            if (((w0 & 0xffff8800) | imm) !== 0) throw fault(VEC.UD); // reg, reg
            const r = reg[a]! | reg[b & 7]!;
            reg[a] = r;
            cpu.eflags = logicFlags(cpu.eflags, r);
            break;
          }
          case 0x24: {
            if (((w0 & 0xffff8800) | imm) !== 0) throw fault(VEC.UD); // reg, reg
            const r = reg[a]! ^ reg[b & 7]!;
            reg[a] = r;
            cpu.eflags = logicFlags(cpu.eflags, r);
            break;
          }
          case 0x25: {
            if (((w0 & 0xffff8800) | imm) !== 0) throw fault(VEC.UD); // reg, reg
            const x = reg[a]!;
            const y = reg[b & 7]!;
            cpu.eflags = subFlags(cpu.eflags, x, y, (x - y) | 0);
            break;
          }
          case 0x26:
            if (((w0 & 0xffff8800) | imm) !== 0) throw fault(VEC.UD); // reg, reg
            cpu.eflags = logicFlags(cpu.eflags, reg[a]! & reg[b & 7]!);
            break;
          case 0x27:
          case 0x28:
          case 0x29:
          case 0x2a:
          case 0x2b:
          case 0x2c:
            if (((w0 & 0xffff8800) | imm) !== 0) throw fault(VEC.UD); // reg, reg
            reg[a] = rareAlu(cpu, op - 0x20, reg[a]!, reg[b & 7]!);
            break;
          // ALU reg, imm
          case 0x30: {
            if ((w0 & 0xfffff800) !== 0) throw fault(VEC.UD); // reg, imm
            const x = reg[a]!;
            const y = imm | 0;
            const r = (x + y) | 0;
            reg[a] = r;
            cpu.eflags = addFlags(cpu.eflags, x, y, r);
            break;
          }
          case 0x31: {
            if ((w0 & 0xfffff800) !== 0) throw fault(VEC.UD); // reg, imm
            const x = reg[a]!;
            const y = imm | 0;
            const r = (x - y) | 0;
            reg[a] = r;
            cpu.eflags = subFlags(cpu.eflags, x, y, r);
            break;
          }
          case 0x32: {
            if ((w0 & 0xfffff800) !== 0) throw fault(VEC.UD); // reg, imm
            const r = reg[a]! & imm;
            reg[a] = r;
            cpu.eflags = logicFlags(cpu.eflags, r);
            break;
          }
          case 0x33: {
            if ((w0 & 0xfffff800) !== 0) throw fault(VEC.UD); // reg, imm
            const r = reg[a]! | imm;
            reg[a] = r;
            cpu.eflags = logicFlags(cpu.eflags, r);
            break;
          }
          case 0x34: {
            if ((w0 & 0xfffff800) !== 0) throw fault(VEC.UD); // reg, imm
            const r = reg[a]! ^ imm;
            reg[a] = r;
            cpu.eflags = logicFlags(cpu.eflags, r);
            break;
          }
          case 0x35: {
            if ((w0 & 0xfffff800) !== 0) throw fault(VEC.UD); // reg, imm
            const x = reg[a]!;
            const y = imm | 0;
            cpu.eflags = subFlags(cpu.eflags, x, y, (x - y) | 0);
            break;
          }
          case 0x36:
            if ((w0 & 0xfffff800) !== 0) throw fault(VEC.UD); // reg, imm
            cpu.eflags = logicFlags(cpu.eflags, reg[a]! & imm);
            break;
          case 0x37: {
            if ((w0 & 0xfffff800) !== 0) throw fault(VEC.UD); // reg, imm
            // SHL: CF = the last bit shifted out; a count of 0 changes nothing
            const x = reg[a]!;
            const n = imm & 31;
            if (n !== 0) {
              const r = x << n;
              reg[a] = r;
              cpu.eflags = logicFlags(cpu.eflags, r) | ((x >>> (32 - n)) & 1);
            }
            break;
          }
          case 0x38:
          case 0x39:
          case 0x3a:
          case 0x3b:
          case 0x3c:
            if ((w0 & 0xfffff800) !== 0) throw fault(VEC.UD); // reg, imm
            reg[a] = rareAlu(cpu, op - 0x30, reg[a]!, imm | 0);
            break;
          // data movement. Memory operands (operands.ts): segment in byte 2 (0xF: SS for an ESP or
          // EBP base, else DS; above 5 #UD), offset [base + disp] or [disp] for base 8. A dword in
          // DS or SS is read or written inline when the cached rights and limit allow it, its linear
          // address is aligned, and paging is off or the TLB holds a translation that allows it (as
          // Mmu.translate); anything else goes through Cpu.read32/write32, which raise the faults.
          case 0x10:
            if (((w0 & 0xffff8800) | imm) !== 0) throw fault(VEC.UD); // reg, reg
            reg[a] = reg[b & 7]!;
            break;
          case 0x11:
            if ((w0 & 0xfffff800) !== 0) throw fault(VEC.UD); // reg, imm
            reg[a] = imm;
            break;
          case 0x12: {
            if ((w0 & 0xfff00800) !== 0) throw fault(VEC.UD); // reg, mem
            const seg = cpu.memSegment[(w0 >>> 12) & 0xff]!; // 0xFF: base > 8 or segment 6..14
            if (seg > 5) throw fault(VEC.UD);
            const off = b === 8 ? imm : (reg[b & 7]! + imm) >>> 0;
            let p = 0xffff_ffff; // no RAM dword: 0x3FFFFFFF is beyond any ram32
            if (seg === 3 ? off < dsRdEnd : seg === 2 && off < ssRdEnd) {
              const lin = ((seg === 3 ? dsBase : ssBase) + off) >>> 0;
              if ((lin & 3) === 0) {
                if (pgNeed < 0) p = lin;
                else if (lin >>> 12 === rdPage) p = (rdFrame | (lin & 0xfff)) >>> 0;
                else {
                  const i = (lin >>> 12) & 1023;
                  const e = cpu.mmu.tlbEntry[i]!;
                  if (cpu.mmu.tlbTag[i] === (lin >>> 12) + 1 && (e & pgNeed & 0xff) === (pgNeed & 0xff)) {
                    rdPage = lin >>> 12;
                    rdFrame = e & ~0xfff;
                    p = (rdFrame | (lin & 0xfff)) >>> 0;
                  }
                }
              }
            }
            if (p >>> 2 < ram32.length) reg[a] = ram32[p >>> 2]!;
            else {
              rdPage = -1; // the general path may walk (see rdPage)
              wrPage = -1;
              reg[a] = cpu.read32(seg, off);
            }
            break;
          }
          case 0x13: {
            if ((w0 & 0xfff00800) !== 0) throw fault(VEC.UD); // reg, mem
            const seg = cpu.memSegment[(w0 >>> 12) & 0xff]!; // 0xFF: base > 8 or segment 6..14
            if (seg > 5) throw fault(VEC.UD);
            const off = b === 8 ? imm : (reg[b & 7]! + imm) >>> 0;
            let p = 0xffff_ffff; // no RAM dword: 0x3FFFFFFF is beyond any ram32
            if (seg === 3 ? off < dsWrEnd : seg === 2 && off < ssWrEnd) {
              const lin = ((seg === 3 ? dsBase : ssBase) + off) >>> 0;
              if ((lin & 3) === 0) {
                if (pgNeed < 0) p = lin;
                else if (lin >>> 12 === wrPage) p = (wrFrame | (lin & 0xfff)) >>> 0;
                else {
                  const i = (lin >>> 12) & 1023;
                  const e = cpu.mmu.tlbEntry[i]!;
                  if (cpu.mmu.tlbTag[i] === (lin >>> 12) + 1 && (e & (pgNeed >>> 8)) === pgNeed >>> 8) {
                    wrPage = lin >>> 12;
                    wrFrame = e & ~0xfff;
                    p = (wrFrame | (lin & 0xfff)) >>> 0;
                  }
                }
              }
            }
            if (p >>> 2 < ram32.length) ram32[p >>> 2] = reg[a]!;
            else {
              rdPage = -1; // the general path may walk (see rdPage)
              wrPage = -1;
              cpu.write32(seg, off, reg[a]!);
            }
            break;
          }
          case 0x14:
            if ((w0 & 0xfff00800) !== 0) throw fault(VEC.UD); // reg, mem
            rdPage = -1; // the general path may walk (see rdPage)
            wrPage = -1;
            reg[a] = cpu.read8(memSeg(w0), memEa(reg, b, imm));
            break;
          case 0x15:
            if ((w0 & 0xfff00800) !== 0) throw fault(VEC.UD); // reg, mem
            rdPage = -1; // the general path may walk (see rdPage)
            wrPage = -1;
            cpu.write8(memSeg(w0), memEa(reg, b, imm), reg[a]!);
            break;
          case 0x16:
            if ((w0 & 0xfff00800) !== 0) throw fault(VEC.UD); // reg, mem
            memSeg(w0); // no access, but the segment field is decoded (#UD when invalid)
            reg[a] = memEa(reg, b, imm);
            break;
          case 0x17:
          case 0x18:
          case 0x52:
          case 0x53: {
            // push reg, call reg: reg; push imm, call imm: imm
            if ((op === 0x17 || op === 0x53 ? (w0 & 0xfffff800) | imm : w0 & 0xffffff00) !== 0)
              throw fault(VEC.UD);
            // PUSH reg, PUSH imm, CALL imm, CALL reg: a dword below ESP in SS, inline as ST. CALL
            // checks its target against the CS limit before the push (SDM CALL: "IF tempEIP is not
            // within code segment limit THEN #GP(0)").
            let value: number;
            if (op === 0x52 || op === 0x53) {
              const t = op === 0x52 ? imm : reg[a]! >>> 0;
              if (t > csLimit) throw fault(VEC.GP, 0);
              to = t | 0;
              value = next;
            } else value = op === 0x17 ? reg[a]! : imm;
            const esp = (reg[4]! - 4) >>> 0;
            let p = 0xffff_ffff; // no RAM dword: 0x3FFFFFFF is beyond any ram32
            if (esp < ssWrEnd) {
              const lin = (ssBase + esp) >>> 0;
              if ((lin & 3) === 0) {
                if (pgNeed < 0) p = lin;
                else if (lin >>> 12 === wrPage) p = (wrFrame | (lin & 0xfff)) >>> 0;
                else {
                  const i = (lin >>> 12) & 1023;
                  const e = cpu.mmu.tlbEntry[i]!;
                  if (cpu.mmu.tlbTag[i] === (lin >>> 12) + 1 && (e & (pgNeed >>> 8)) === pgNeed >>> 8) {
                    wrPage = lin >>> 12;
                    wrFrame = e & ~0xfff;
                    p = (wrFrame | (lin & 0xfff)) >>> 0;
                  }
                }
              }
            }
            if (p >>> 2 < ram32.length) ram32[p >>> 2] = value;
            else {
              rdPage = -1; // the general path may walk (see rdPage)
              wrPage = -1;
              cpu.write32(SS, esp, value);
            }
            reg[4] = esp;
            break;
          }
          case 0x19:
          case 0x54:
          case 0x55: {
            // pop reg: reg; ret: no operand; ret imm16
            if (
              ((w0 & (op === 0x19 ? 0xfffff800 : 0xffffff00)) | (imm & (op === 0x55 ? 0xffff0000 : -1))) !==
              0
            )
              throw fault(VEC.UD);
            // POP reg, RET, RET imm: the dword at SS:ESP, inline as LD. POP updates ESP before it
            // writes the register, so POP ESP loads the popped value, as on x86; RET checks its
            // target against the CS limit.
            const esp = reg[4]! >>> 0;
            let p = 0xffff_ffff; // no RAM dword: 0x3FFFFFFF is beyond any ram32
            if (esp < ssRdEnd) {
              const lin = (ssBase + esp) >>> 0;
              if ((lin & 3) === 0) {
                if (pgNeed < 0) p = lin;
                else if (lin >>> 12 === rdPage) p = (rdFrame | (lin & 0xfff)) >>> 0;
                else {
                  const i = (lin >>> 12) & 1023;
                  const e = cpu.mmu.tlbEntry[i]!;
                  if (cpu.mmu.tlbTag[i] === (lin >>> 12) + 1 && (e & pgNeed & 0xff) === (pgNeed & 0xff)) {
                    rdPage = lin >>> 12;
                    rdFrame = e & ~0xfff;
                    p = (rdFrame | (lin & 0xfff)) >>> 0;
                  }
                }
              }
            }
            let v: number;
            if (p >>> 2 < ram32.length) v = ram32[p >>> 2]!;
            else {
              rdPage = -1; // the general path may walk (see rdPage)
              wrPage = -1;
              v = cpu.read32(SS, esp) | 0;
            }
            if (op === 0x19) {
              reg[4] = (esp + 4) | 0;
              reg[a] = v;
            } else {
              const t = v >>> 0;
              if (t > csLimit) throw fault(VEC.GP, 0);
              reg[4] = (esp + 4 + (op === 0x55 ? imm & 0xffff : 0)) | 0;
              to = t | 0;
            }
            break;
          }
          // unary
          case 0x40: {
            if (((w0 & 0xfffff800) | imm) !== 0) throw fault(VEC.UD); // reg
            const v = reg[a]!;
            const r = -v | 0;
            reg[a] = r;
            cpu.eflags = subFlags(cpu.eflags, 0, v, r);
            break;
          }
          case 0x41:
            if (((w0 & 0xfffff800) | imm) !== 0) throw fault(VEC.UD); // reg
            reg[a] = ~reg[a]!;
            break;
          case 0x42: {
            if (((w0 & 0xfffff800) | imm) !== 0) throw fault(VEC.UD); // reg
            // INC / DEC: CF unchanged
            const v = reg[a]!;
            const r = (v + 1) | 0;
            reg[a] = r;
            const f = cpu.eflags;
            cpu.eflags = (addFlags(f, v, 1, r) & ~CF) | (f & CF);
            break;
          }
          case 0x43: {
            if (((w0 & 0xfffff800) | imm) !== 0) throw fault(VEC.UD); // reg
            const v = reg[a]!;
            const r = (v - 1) | 0;
            reg[a] = r;
            const f = cpu.eflags;
            cpu.eflags = (subFlags(f, v, 1, r) & ~CF) | (f & CF);
            break;
          }
          // near JMP and Jcc: a target beyond the CS limit faults #GP(0) at the branch (SDM JMP/Jcc:
          // "IF tempEIP is not within code segment limit THEN #GP(0)")
          case 0x50:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if (imm > csLimit) throw fault(VEC.GP, 0);
            to = imm | 0;
            break;
          case 0x51: {
            if (((w0 & 0xfffff800) | imm) !== 0) throw fault(VEC.UD); // reg
            const t = reg[a]! >>> 0;
            if (t > csLimit) throw fault(VEC.GP, 0);
            to = t | 0;
            break;
          }
          case 0x58:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & ZF) !== 0) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x59:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & ZF) === 0) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x5a:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & CF) !== 0) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x5b:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & CF) === 0) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x5c:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & SF) !== 0) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x5d:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & SF) === 0) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x5e:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & OF) !== 0) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x5f:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & OF) === 0) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x60:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if (signNotOverflow(cpu.eflags)) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x61:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if (!signNotOverflow(cpu.eflags)) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x62:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & ZF) !== 0 || signNotOverflow(cpu.eflags)) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x63:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if (!((cpu.eflags & ZF) !== 0 || signNotOverflow(cpu.eflags))) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x64:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & (CF | ZF)) !== 0) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x65:
            if ((w0 & 0xffffff00) !== 0) throw fault(VEC.UD); // imm
            if ((cpu.eflags & (CF | ZF)) === 0) to = nearTarget(imm, csLimit) | 0;
            break;
          case 0x81:
            if (((w0 & 0xffff8800) | imm) !== 0) throw fault(VEC.UD); // reg, reg
            if (b > 5) throw fault(VEC.UD);
            reg[a] = cpu.segSel[b]!;
            break;
          case 0x82: {
            if (((w0 & 0xfffff800) | imm) !== 0) throw fault(VEC.UD); // reg
            const s = (w0 >>> 8) & 0xf;
            if (s > 5) throw fault(VEC.UD);
            rdPage = -1; // the general path may walk (see rdPage)
            wrPage = -1;
            cpu.push32(cpu.segSel[s]!);
            break;
          }
          case 0xa2:
            if (((w0 & 0xffffff00) | imm) !== 0) throw fault(VEC.UD); // no operand
            rdPage = -1; // the general path may walk (see rdPage)
            wrPage = -1;
            cpu.push32(cpu.eflags);
            break;
          case 0x01:
            if (((w0 & 0xffffff00) | imm) !== 0) throw fault(VEC.UD); // no operand
            break;
          default: {
            if (op === 0x80) {
              // MOV DS, ES, FS or GS, reg: the common case of loadSegment (loadDataSegmentFast: a
              // selector the fast path accepts, having run every check) without leaving the inner
              // loop, since nothing the prologue looks at changes but DS's cached bounds, set here.
              // Anything else (SS, a null selector, a descriptor the fast path leaves to the
              // general rules, a bad encoding) goes to `other`, as every segment load did.
              const s = (w0 >>> 8) & 0xf;
              if (
                ((w0 & 0xffff8800) | imm) === 0 &&
                (s === 3 || s === 0 || s === 4 || s === 5) &&
                loadDataSegmentFast(cpu, s, reg[b & 7]! & 0xffff)
              ) {
                if (s === 3) {
                  dsBase = cpu.segBase[3]!;
                  dsRdEnd = readEnd(cpu.segFlags[3]!, cpu.segLimit[3]!);
                  dsWrEnd = writeEnd(cpu.segFlags[3]!, cpu.segLimit[3]!);
                  const ctx = cpu.jitCtx;
                  ctx[2] = dsBase;
                  ctx[3] = dsRdEnd;
                  ctx[4] = dsWrEnd;
                }
                break;
              }
            }
            // Not ordinary (or undefined): out of line (`other`), so that this function stays small
            // enough for V8 to compile quickly. It sets cpu.eip to the next instruction's EIP and
            // says what the next one needs (LIGHT or FULL), or that the run stops (an exit).
            cpu.instructions += executed - counted;
            counted = executed;
            const k = other(cpu, op, w0, imm, start, eip, next);
            if (k < 0) {
              // cpu.eip is at the instruction (other() left it there)
              if (k === EXIT_GP) return { reason: 'exit', vector: VEC.GP, errorCode: 0, executed };
              return { reason: 'exit', vector: EXIT_SOFTWARE - k, software: true, executed };
            }
            if (k !== 0) {
              slow |= k;
              stop = 0; // the inner loop ends after this instruction
            }
            to = cpu.eip | 0;
          }
        }
        eip = to;
        executed++;
        // cpu.eip is stored when the inner loop ends: ordinary instructions do not read it.
        if (executed >= stop) {
          cpu.eip = to >>> 0;
          break;
        }
        start = eip;
      }
    } catch (e) {
      const at = cpu.jitAt;
      if (at >= 0) {
        // Thrown by a block: its instruction `at` faulted, after jitCtx[RAN] instructions of its
        // earlier turns and `at` of this one ran.
        cpu.jitAt = -1;
        start = (cpu.jitCtx[10]! + 8 * at) | 0; // jit.ts CTX.FAULT_EIP: the EIP of the block that threw
        last = null;
        eip = start;
        const ran = cpu.jitCtx[8]! + at;
        executed += ran;
        cpu.jit!.ranCount[0]! += ran;
        cpu.jit!.faults++;
      }
      if (!(e instanceof CpuFault)) {
        cpu.eip = eip >>> 0; // as a fault leaves it: at the instruction
        cpu.instructions += executed - counted;
        throw e;
      }
      slow = 3;
      cpu.eip = start >>> 0;
      // An exception is an event external to the program: a fault while delivering it sets EXT in
      // its error code (SDM §6.13; only INT n, INT3 and INTO deliver with EXT = 0).
      const r = raise(cpu, e.vector, e.errorCode, { software: false, ext: 1, returnEip: start >>> 0 });
      if (r !== undefined) {
        cpu.instructions += executed - counted;
        return { ...r, executed };
      }
      executed++; // a fault delivered completes the instruction's step
    }
    // A trace hook set keeps `slow`; one set by this instruction (through a device) made it slow.
    if (slow === 3 && cpu.trace !== undefined) {
      cpu.instructions += executed - counted;
      counted = executed;
      cpu.trace(cpu, start >>> 0);
    }
  }
  cpu.instructions += executed - counted;
  return { reason: 'budget', executed };
}

/** `other`'s answers that stop the run (negative; 0, 1 and 3 are what the next instruction needs). */
const EXIT_GP = -1;
/** A software interrupt stopped by `exitSoftware`: EXIT_SOFTWARE - vector. */
const EXIT_SOFTWARE = -2;

/**
 * #GP(0) for the instruction at `start`: EXIT_GP (cpu.eip at it) when the host takes #GP as an exit,
 * so that a VM manager's trap costs no exception; else thrown.
 */
function refuse(cpu: Cpu, start: number): number {
  if ((cpu.exitVectors >>> VEC.GP) & 1) {
    cpu.eip = start >>> 0;
    return EXIT_GP;
  }
  throw fault(VEC.GP, 0);
}

/**
 * The instructions that are not ordinary (and undefined opcodes: #UD), out of the run loop: far
 * transfers, software interrupts, segment loads (but for the common case of DS, ES, FS and GS,
 * which the run loop takes itself), system instructions, port I/O, CLI/STI, POPF,
 * HLT. `start` is the EIP of the instruction before the beforeStep hook ran, `eip` its EIP, `next`
 * the EIP after it. Sets cpu.eip to the EIP the run continues at and returns what the next
 * instruction needs first (1: the segment part of the prologue, 3: all of it); or stops the run
 * with cpu.eip at the instruction: EXIT_GP (a #GP(0) the host takes as an exit) or
 * EXIT_SOFTWARE - vector (a software interrupt the host sees first). A fault is thrown, as in the
 * run loop.
 */
function other(
  cpu: Cpu,
  op: number,
  w0: number,
  imm: number,
  start: number,
  eip: number,
  next: number,
): number {
  const IF = 0x200;
  const SS = 2;
  const reg = cpu.reg;
  const b = (w0 >>> 12) & 0xf;
  switch (op) {
    // far transfers: they set EIP themselves
    case 0x70:
    case 0x71: {
      if ((w0 & 0xff00) !== 0) throw fault(VEC.UD); // sel16 and imm32 (ENCODING)
      const selector = (w0 >>> 16) & 0xffff;
      if (op === 0x71 && callGateFast(cpu, selector, next >>> 0)) return 1;
      farTransfer(cpu, op === 0x71, selector, imm, next >>> 0);
      return 1;
    }
    case 0x72:
    case 0x73:
      if (((w0 & 0xffffff00) | (imm & (op === 0x72 ? -1 : 0xffff0000))) !== 0) throw fault(VEC.UD);
      if (!farReturnFast(cpu, imm & 0xffff)) farReturn(cpu, imm & 0xffff); // imm: 0 for RETF
      return 1;
    case 0x74: {
      if (((w0 & 0xffffff00) | imm) !== 0) throw fault(VEC.UD); // no operand (ENCODING)
      const wasIf = cpu.eflags & IF;
      if (!interruptReturnFast(cpu)) interruptReturn(cpu);
      // IF from 0 to 1: a pending interrupt is taken before the next instruction (FULL)
      return (cpu.eflags & IF & ~wasIf) !== 0 ? 3 : 1;
    }
    case 0x75:
    case 0x76: {
      if (((w0 & 0xffffff00) | (imm & (op === 0x75 ? 0xffffff00 : -1))) !== 0) throw fault(VEC.UD);
      const vector = op === 0x76 ? VEC.BP : imm & 0xff;
      if (cpu.exitSoftware === true) {
        // The VM manager sees every software interrupt (TB-3 rule 6), at the INT itself.
        cpu.eip = eip >>> 0;
        return EXIT_SOFTWARE - vector;
      }
      // A software interrupt is a trap: it returns after the INT (reference §3.5 for the DPL check).
      if (!deliverFast(cpu, vector, -1, true, next >>> 0)) {
        cpu.eip = next >>> 0;
        try {
          deliver(cpu, vector, undefined, true, 0, next >>> 0);
        } catch (e) {
          cpu.eip = eip >>> 0;
          throw e;
        }
      }
      return 1;
    }
    // segment registers (byte 1: A = segment register, or a register number as the operand says)
    case 0x80: {
      checkEncoding(w0, imm);
      const s = (w0 >>> 8) & 0xf;
      if (s > 5) throw fault(VEC.UD);
      loadSegment(cpu, s, reg[b & 7]! & 0xffff);
      cpu.eip = next >>> 0;
      return s === SS ? 3 : 1; // SS: the interrupt shadow (FULL)
    }
    case 0x83: {
      checkEncoding(w0, imm);
      const s = (w0 >>> 8) & 0xf;
      if (s > 5) throw fault(VEC.UD);
      const v = cpu.read32(SS, cpu.esp);
      loadSegment(cpu, s, v & 0xffff);
      reg[4] = (cpu.esp + 4) | 0;
      cpu.eip = next >>> 0;
      return s === SS ? 3 : 1;
    }
    case 0x84:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x90:
    case 0x91:
    case 0x92:
    case 0x93:
    case 0x94:
    case 0x95:
    case 0x96:
    case 0x97:
    case 0x98:
    case 0x99:
    case 0x9a:
    case 0x9b:
    case 0x9c:
    case 0xa4:
    case 0xa5:
    case 0xa6:
    case 0xa7:
      checkEncoding(w0, imm);
      // system registers, descriptor inspection, port I/O (a device may raise an interrupt)
      if (
        op >= 0xa4 &&
        (cpu.exitVectors >>> VEC.GP) & 1 &&
        !ioAllowed(cpu, (op & 1) === 0 ? imm & 0xffff : reg[op === 0xa5 ? b & 7 : (w0 >>> 8) & 7]! & 0xffff)
      ) {
        // A denied IN/OUT the host takes as an exit (a VM manager's I/O trap): the #GP(0) the
        // general path would throw, without the exception.
        cpu.eip = start >>> 0;
        return EXIT_GP;
      }
      systemOp(cpu, op, (w0 >>> 8) & 0xf, b, (w0 >>> 16) & 0xff, imm);
      break;
    case 0xa0:
    case 0xa1:
      checkEncoding(w0, imm);
      if (cpu.cpl > cpu.iopl) return refuse(cpu, start); // a VM manager's CLI/STI trap
      if (op === 0xa0) cpu.eflags &= ~IF;
      else {
        if (!(cpu.eflags & IF)) cpu.interruptShadow = true;
        cpu.eflags |= IF;
      }
      break;
    case 0xa3: {
      checkEncoding(w0, imm);
      const v = cpu.read32(SS, cpu.esp);
      cpu.eflags = mergeFlags(cpu, v, cpu.cpl);
      reg[4] = (cpu.esp + 4) | 0;
      break;
    }
    case 0x02:
      checkEncoding(w0, imm);
      if (cpu.cpl !== 0) return refuse(cpu, start); // a VM manager's HLT trap
      cpu.halted = true;
      break;
    default:
      throw fault(VEC.UD);
  }
  cpu.eip = next >>> 0;
  return 3;
}

interface RaiseOpts {
  readonly software: boolean;
  readonly ext: number;
  readonly returnEip: number;
}

/** Delivers an event, with the double- and triple-fault rules (SDM Table 6-5). */
export function raise(
  cpu: Cpu,
  vector: number,
  errorCode: number | undefined,
  o: RaiseOpts,
): Omit<RunResult, 'executed'> | undefined {
  if (vector < 32 && (cpu.exitVectors >>> vector) & 1) {
    return { reason: 'exit', vector, ...(errorCode === undefined ? {} : { errorCode }) };
  }
  try {
    deliver(cpu, vector, errorCode, o.software, o.ext, o.returnEip);
    return undefined;
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    if (vector === VEC.DF) {
      cpu.shutdown = true;
      return {
        reason: 'shutdown',
        vector: e.vector,
        ...(e.errorCode === undefined ? {} : { errorCode: e.errorCode }),
      };
    }
    const second = e.vector;
    const double =
      (isContributory(vector) && isContributory(second)) ||
      (vector === VEC.PF && (isContributory(second) || second === VEC.PF));
    if (double) return raise(cpu, VEC.DF, 0, { software: false, ext: 1, returnEip: o.returnEip });
    return raise(cpu, second, e.errorCode, { software: false, ext: 1, returnEip: o.returnEip });
  }
}

// EFLAGS after an ALU result, from the old flags `f` (0x8c1 = CF | ZF | SF | OF, the bits written).
// ZF 0x40: r = 0. SF 0x80: bit 31 of r. CF 0x1: the carry (borrow) out of bit 31, as an unsigned
// comparison: r < x after x + y, x < y for x - y. OF 0x800: the overflow sign, bit 31. Written as
// comparisons rather than bit tricks on bit 31 (r | -r for ZF; the operands' and result's top bits
// for CF): V8 compiles these to fewer instructions, and the compute loop of bench/cpu.ts ran 6%
// faster for it (paired runs, issue 3; `+(r === 0) << 6` for ZF was 1% slower again).
// test/cpu/alu-flags.test.ts checks every ALU instruction against the definitions.

/** After a logic result `r`: ZF, SF from r; CF = OF = 0. */
function logicFlags(f: number, r: number): number {
  return (f & ~0x8c1) | (r === 0 ? 0x40 : 0) | ((r >>> 24) & 0x80);
}

/** After r = x + y (int32s): ZF, SF, CF (unsigned carry), OF (signed overflow). */
function addFlags(f: number, x: number, y: number, r: number): number {
  return (
    (f & ~0x8c1) |
    (r === 0 ? 0x40 : 0) |
    ((r >>> 24) & 0x80) |
    (r >>> 0 < x >>> 0 ? 1 : 0) |
    (((~(x ^ y) & (x ^ r)) >>> 20) & 0x800)
  );
}

/** After r = x - y (int32s): ZF, SF, CF (unsigned borrow), OF (signed overflow). */
function subFlags(f: number, x: number, y: number, r: number): number {
  return (
    (f & ~0x8c1) |
    (r === 0 ? 0x40 : 0) |
    ((r >>> 24) & 0x80) |
    (x >>> 0 < y >>> 0 ? 1 : 0) |
    ((((x ^ y) & (x ^ r)) >>> 20) & 0x800)
  );
}

/** SF != OF (the signed "less" condition). */
function signNotOverflow(f: number): boolean {
  return (((f >>> 7) ^ (f >>> 11)) & 1) !== 0;
}

/** A taken Jcc's target, or #GP(0) beyond the CS limit (as JMP). */
function nearTarget(target: number, csLimit: number): number {
  if (target > csLimit) throw fault(VEC.GP, 0);
  return target;
}

/** SHL, SHR, SAR, MUL, DIVU, REMU (group index 7..12, table order in isa.ts): the new value of a. */
function rareAlu(cpu: Cpu, k: number, a: number, b: number): number {
  switch (k) {
    case 7:
    case 8:
    case 9: {
      const n = b & 31;
      if (n === 0) return a;
      const r = k === 7 ? a << n : k === 8 ? a >>> n : a >> n;
      const out = k === 7 ? (a >>> (32 - n)) & 1 : (a >>> (n - 1)) & 1;
      cpu.eflags = logicFlags(cpu.eflags, r | 0) | out;
      return r | 0;
    }
    case 10: {
      // CF = OF = the high half of the unsigned product is not 0, i.e. the product is >= 2^32; the
      // double product decides that exactly (below 2^32 it is exact, at or above it cannot round below).
      const r = Math.imul(a, b);
      cpu.eflags = logicFlags(cpu.eflags, r) | ((a >>> 0) * (b >>> 0) > 0xffff_ffff ? FL.CF | FL.OF : 0);
      return r;
    }
    default: {
      if (b === 0) throw fault(VEC.DE);
      return k === 11 ? ((a >>> 0) / (b >>> 0)) | 0 : ((a >>> 0) % (b >>> 0)) | 0;
    }
  }
}

/**
 * Strict decoding of an instruction that is not ordinary, from the table (isa.ts, MBZ): #UD when a
 * must-be-zero bit is set. (Ordinary instructions, MOV of a data segment register in the run loop,
 * and the far transfers and INT n in `other` test literal masks: ENCODING.)
 */
function checkEncoding(w0: number, imm: number): void {
  const op = w0 & 0xff;
  if (((w0 & MBZ[op << 1]!) | (imm & MBZ[(op << 1) | 1]!)) !== 0) throw fault(VEC.UD);
}

/**
 * The literal must-be-zero masks the run loop's cases and `other`'s far transfers and INT n test,
 * by operand layout: dword 0, imm (-1: imm unused, 0: all of it used, 0xFFFF0000: an imm16, and
 * so on), and the opcodes that test them. Checked against the table when this module loads, so
 * the masks cannot drift from isa.ts; decode.test.ts checks that each case tests its mask.
 */
const ENCODING: readonly (readonly [number, number, readonly number[]])[] = [
  [
    0xffff8800 | 0,
    -1,
    [0x10, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x81],
  ],
  [0xfffff800 | 0, 0, [0x11, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c]],
  [0xfffff800 | 0, -1, [0x17, 0x19, 0x40, 0x41, 0x42, 0x43, 0x51, 0x53, 0x82]],
  [
    0xffffff00 | 0,
    0,
    [0x18, 0x50, 0x52, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63, 0x64, 0x65],
  ],
  [0xffffff00 | 0, -1, [0x01, 0x54, 0xa2, 0x72, 0x74, 0x76]],
  [0xffffff00 | 0, 0xffff0000 | 0, [0x55, 0x73]],
  [0xffffff00 | 0, 0xffffff00 | 0, [0x75]],
  [0xff00, 0, [0x70, 0x71]],
  [0xfff00800 | 0, 0, [0x12, 0x13, 0x14, 0x15, 0x16]],
  [0xffff8800 | 0, -1, [0x80]],
];
for (const [w0, imm, ops] of ENCODING) {
  for (const op of ops) {
    if (MBZ[op << 1] !== w0 || MBZ[(op << 1) | 1] !== imm) {
      throw new Error(
        `exec.ts: the literal decoding mask of opcode 0x${op.toString(16)} differs from isa.ts`,
      );
    }
  }
}

/** Segment of a memory operand, from the instruction's first dword (#UD: base > 8 or segment 6..14). */
function memSeg(w0: number): number {
  const seg = MEM_SEGMENT[(w0 >>> 12) & 0xff]!;
  if (seg > 5) throw fault(VEC.UD);
  return seg;
}

/** Offset of a memory operand: [base + disp], or [disp] when the base is NO_BASE (operands.ts). */
function memEa(reg: Int32Array, b: number, imm: number): number {
  return b === NO_BASE ? imm : (reg[b & 7]! + imm) >>> 0;
}
