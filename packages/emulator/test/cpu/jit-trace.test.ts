/**
 * Traces (src/cpu/jit.ts, Jit.trace): blocks run one after the other across near branches and far
 * transfers, against the run loop alone. Ring 3's segments differ from ring 0's here (a CS limit
 * that ends inside the program, SS and DS at another base), so that a part after a far transfer
 * that used the other ring's CS limit, stack or data bounds, or paging rights, would read, write or
 * branch where the run loop does not; and the CS limit, the DS descriptor and interrupts change
 * between runs. Each run must end with the same result, state, count and memory with traces (made
 * at the first link followed) as without blocks.
 */
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../src/cpu/cpu.js';
import { gateDescriptor, segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { run } from '../../src/cpu/exec.js';
import { R, S } from '../../src/cpu/isa.js';
import {
  CODE_AT,
  code,
  enablePaging,
  enc,
  enter,
  faultHandlers,
  idtGate,
  loadCache,
  lockstep,
  type Machine,
  machine,
  machineView,
  PD,
  PG,
  type PolledIrq,
  PT0,
  program,
  randomLockstep,
  rng,
  SEL,
  setGdt,
  withPolledIrq,
} from './harness.js';

/** Ring 3's data and stack segments start here (ring 0's at 0). */
const USER_BASE = 0x2000;
/** Ring 3's CS limit: the program below, but not CODE_AT + 0x1000, where its JMP goes. */
const USER_LIMIT = CODE_AT + 0x7ff;
/**
 * Ring 0's code for the gates here: a segment of its own at GATE_ENTRY, limit 0xFFF (ring 3's is
 * far longer), and a conforming one over the same bytes.
 */
const GATE_ENTRY = 0x1c000;
const SYSCALL = 0x1c100;
const TIMER = 0x1c200;
const KCODE = SEL.free(1);
const KCONF = SEL.free(2);
/**
 * Two pages only ring 0 may use (with paging), both touched in ring 0 (so that the TLB holds them):
 * SUPER through ring 0's stack (base 0), SUPER + USER_BASE through ring 3's segments at offset SUPER.
 */
const SUPER = 0x30000;
/**
 * A copy of ring 0's code page but for one immediate: mapped in its place for a while (with
 * paging), or KCODE's and KCONF's base for a while.
 */
const ALT_FRAME = 0x5c000;

/** Ring 3's data and stack limit (ring 0's is 0xFFFFF): the stack's top page, and no more. */
const USER_DATA_LIMIT = 0xaffff;

/**
 * The call gate to GATE_ENTRY through `target`: KCODE (to ring 0) or KCONF (the same base and
 * limit, but CPL stays 3).
 */
function gate(m: Machine, target: number): void {
  setGdt(
    m.cpu,
    SEL.gate >>> 3,
    gateDescriptor({ type: TYPE.CALL_GATE, selector: target, offset: 0, dpl: 3 }),
  );
}

/** `traceHot` 0: no blocks at all, else blocks compiled at their first visit and traces at that. */
/**
 * `rare`: the program's faults come in some turns only (else in every turn: a handler in a third
 * code segment replaces a code window, so far links find none that fits more often).
 */
function setUp(traceHot: number, paging: boolean, rare = true): Machine & { irq: PolledIrq } {
  const m = machine(3, { jit: traceHot > 0 ? { hot: 1, traceHot } : false });
  const { cpu } = m;
  setGdt(cpu, 4, segmentDescriptor({ base: 0, limit: USER_LIMIT, type: 0xa, dpl: 3 }));
  setGdt(cpu, 12, segmentDescriptor({ base: USER_BASE, limit: USER_DATA_LIMIT, type: 0x2, dpl: 3 }));
  enter(cpu, 3);
  setGdt(cpu, KCODE >>> 3, segmentDescriptor({ base: GATE_ENTRY, limit: 0xfff, type: 0xa, dpl: 0 }));
  setGdt(cpu, KCONF >>> 3, segmentDescriptor({ base: GATE_ENTRY, limit: 0xfff, type: 0xe, dpl: 0 }));
  gate(m, KCODE);
  idtGate(cpu, 0x80, { type: TYPE.TRAP_GATE, selector: KCODE, offset: SYSCALL - GATE_ENTRY, dpl: 3 });
  idtGate(cpu, 0x40, { type: TYPE.INT_GATE, selector: KCODE, offset: TIMER - GATE_ENTRY, dpl: 0 });
  faultHandlers(m);
  // ring 0, through the call gate: its own DS (which the RETF to ring 3 then clears), its stack
  code(
    m,
    GATE_ENTRY,
    enc('ld reg,mem', { a: R.EDI, b: 8, c: S.SS, imm: SUPER }), // in ring 3 (conforming): #PF
    enc('mov reg,imm', { a: R.EDI, imm: SEL.data(0) }),
    enc('mov sreg,reg', { a: S.DS, b: R.EDI }),
    enc('ld reg,mem', { a: R.EDI, b: 8, c: 0xf, imm: 0x41000 }),
    enc('push reg', { a: R.ECX }), // through SS: ring 0's stack (ECX changes each turn)
    enc('pop reg', { a: R.ESI }),
    enc('ld reg,mem', { a: R.EDX, b: R.ESP, c: 0xf, imm: 8 }), // the CALLF's frame: the caller's ESP
    enc('add reg,reg', { a: R.ESI, b: R.EDX }),
    enc('st mem,reg', { a: R.ESI, b: 8, c: 0xf, imm: 0x41004 }),
    enc('retf'),
  );
  // ring 0, INT 0x80 through a trap gate (IF kept: its IRET needs no FULL prologue, a trace goes on
  // after it): the frame through SS
  code(
    m,
    SYSCALL,
    enc('ld reg,mem', { a: R.EDX, b: R.ESP, c: 0xf, imm: 12 }), // the caller's ESP
    enc('ld reg,mem', { a: R.EDX, b: 8, c: S.SS, imm: SUPER + USER_BASE }),
    enc('push reg', { a: R.EDX }),
    enc('pop reg', { a: R.EDX }),
    enc('add reg,imm', { a: R.ESI, imm: 2 }),
    enc('iret'),
  );
  code(m, TIMER, enc('add reg,imm', { a: R.EBX, imm: 0x100 }), enc('iret'));
  // Faults (each handler in a third code segment, which replaces a code window) in every turn, or
  // (rare) in some turns only: traces run the others across the far transfers.
  const at = (slot: number) => CODE_AT + 8 * slot;
  const some = (mask: number) => (rare ? mask : 0); // TEST ECX, 0: the fault's turn every time
  program(
    m,
    enc('mov reg,imm', { a: R.EAX, imm: SEL.data(3) }), // 0
    enc('mov sreg,reg', { a: S.DS, b: R.EAX }),
    enc('jmp imm', { imm: at(3) }), // a near link; with the CS limit short, to past it
    enc('ld reg,mem', { a: R.EAX, b: 8, c: 0xf, imm: 0x40000 }), // 3
    enc('push reg', { a: R.EAX }),
    enc('pop reg', { a: R.EBX }),
    enc('callf far', { sel: SEL.gate | 3 }),
    enc('test reg,imm', { a: R.ECX, imm: some(7) }), // 7
    enc('jnz imm', { imm: at(10) }),
    enc('ld reg,mem', { a: R.EDX, b: 8, c: 0xf, imm: 0x40008 }), // DS is null after the RETF: #GP
    enc('mov reg,imm', { a: R.EAX, imm: SEL.data(3) }), // 10
    enc('mov sreg,reg', { a: S.DS, b: R.EAX }),
    enc('int vec', { imm: 0x80 }),
    enc('add reg,imm', { a: R.ECX, imm: 1 }), // 13
    enc('test reg,imm', { a: R.ECX, imm: some(3) }),
    enc('jnz imm', { imm: at(17) }),
    enc('jmp imm', { imm: CODE_AT + 0x1000 }), // past ring 3's CS limit: #GP
    enc('ld reg,mem', { a: R.EDX, b: 8, c: 0xf, imm: SUPER }), // 17: #PF with paging
    enc('test reg,imm', { a: R.ECX, imm: some(5) }),
    enc('jnz imm', { imm: at(21) }),
    enc('ld reg,mem', { a: R.EDX, b: R.ESP, c: 0xf, imm: 0x1000 }), // past ring 3's stack limit: #SS
    enc('st mem,reg', { a: R.ECX, b: 8, c: 0xf, imm: 0x40004 }), // 21
    enc('jmp imm', { imm: CODE_AT }),
  );
  m.phys.writeBytes(ALT_FRAME, m.phys.ram.slice(GATE_ENTRY, GATE_ENTRY + 0x1000));
  m.phys.write32(ALT_FRAME + 6 * 8 + 4, 12); // the gate's LD reads the caller's SS there, not ESP
  if (paging) {
    enablePaging(m);
    m.phys.write32(PT0 + 4 * (SUPER >>> 12), SUPER | PG.P | PG.W);
    m.phys.write32(PT0 + 4 * ((SUPER + USER_BASE) >>> 12), (SUPER + USER_BASE) | PG.P | PG.W);
    cpu.mmu.flush();
  }
  return withPolledIrq(m);
}

function observe(m: Machine): Record<string, unknown> {
  return machineView(m, {
    data: [
      [0x40000, 0x2000],
      [0x40000 + USER_BASE, 0x2000],
    ],
    stacks: [
      [0x7f000, 0x1000],
      [0xaf000 + USER_BASE, 0x1000],
    ],
    gdt: [[0x1000, 0x100]],
    pageTables: [
      [PD, 8],
      [PT0, 0x400],
    ],
  });
}

/**
 * Two machines at CPL `ring`, built alike by `build`: the first without blocks (the reference), the
 * second compiling blocks at their first visit and making traces at the `traceHot`-th link followed.
 */
function pair(ring: number, build: (m: Machine) => void, traceHot = 1): [Machine, Machine] {
  return [0, traceHot].map((hot) => {
    const m = machine(ring, { jit: hot > 0 ? { hot: 1, traceHot: hot } : false });
    build(m);
    return m;
  }) as [Machine, Machine];
}

/** `runs` runs of `step`, with budgets from 1 to `max` drawn from `rng(seed)`. */
function randomRuns(
  step: (n: number, what?: string) => RunResult,
  seed: number,
  runs: number,
  max: number,
): void {
  const ctl = rng(seed);
  for (let k = 0; k < runs; k++) step(1 + Math.floor(ctl() * max), `run ${k}`);
}

/**
 * Two machines in ring 3 (`pair`): a call gate to KCODE, based at GATE_ENTRY, whose code adds 1 to
 * ESI and returns (a copy at ALT_FRAME adds 7); `prog` at CODE_AT.
 */
function twoHandlers(...prog: Uint8Array[]): [Machine, Machine] {
  return pair(3, (m) => {
    setGdt(m.cpu, KCODE >>> 3, segmentDescriptor({ base: GATE_ENTRY, limit: 0xfff, type: 0xa, dpl: 0 }));
    gate(m, KCODE);
    code(m, GATE_ENTRY, enc('add reg,imm', { a: R.ESI, imm: 1 }), enc('retf'));
    code(m, ALT_FRAME, enc('add reg,imm', { a: R.ESI, imm: 7 }), enc('retf'));
    program(m, ...prog);
  });
}

/** Paging on or off (as MOV CR0 would turn it), the page tables as set up. */
function setPaging(m: Machine, on: boolean): void {
  m.cpu.mmu.paging = on;
  m.cpu.cr0 = on ? (m.cpu.cr0 | 0x8000_0000) >>> 0 : m.cpu.cr0 & 0x7fff_ffff;
  m.cpu.mmu.flush();
}

describe('traces: the same results as the run loop alone', () => {
  for (const [paging, rare] of [
    [false, true],
    [true, true],
    [false, false],
    [true, false],
  ] as const) {
    const name = `across ring changes${paging ? ', paging on' : ''}, faults in ${rare ? 'some turns' : 'every turn'}`;
    it(`${name}: 30 runs of budgets that end anywhere`, () => {
      let traces = 0;
      for (let seed = 1; seed <= 30; seed++) {
        const a = setUp(0, paging, rare);
        // traces of different shapes: made sooner or later as links get hot
        const b = setUp([1, 2, 3, 8][seed % 4]!, paging, rare);
        const ctl = rng(seed);
        const between = () => {
          const c = ctl();
          for (const m of [a, b]) {
            if (c < 0.08) m.irq.vector = 0x40;
            else if (c < 0.12) {
              // ring 3's CS limit shortened to end inside the program: inside the block the JMP
              // goes to, or the one the IRET returns to (its cache too, in ring 3)
              const limit = c < 0.1 ? CODE_AT + 0x27 : c < 0.11 ? CODE_AT + 0x6f : USER_LIMIT;
              setGdt(m.cpu, 4, segmentDescriptor({ base: 0, limit, type: 0xa, dpl: 3 }));
              if ((m.cpu.segSel[S.CS]! & 3) === 3) loadCache(m.cpu, S.CS, SEL.code(3));
            } else if (c < 0.14) {
              // ring 3's data segment not present for a while
              const present = c >= 0.13;
              setGdt(
                m.cpu,
                12,
                segmentDescriptor({ base: USER_BASE, limit: USER_DATA_LIMIT, type: 0x2, dpl: 3, present }),
              );
            } else if (c < 0.22) {
              // the call gate to conforming code for a while: GATE_ENTRY at CPL 3, same base and limit
              gate(m, c < 0.18 ? KCONF : KCODE);
            } else if (paging && c < 0.26) {
              setPaging(m, c >= 0.24); // off for a while
            } else if (paging && c < 0.3) {
              // ring 0's code page mapped to the other frame for a while (INVLPG)
              const frame = c < 0.28 ? ALT_FRAME : GATE_ENTRY;
              m.phys.write32(PT0 + 4 * (GATE_ENTRY >>> 12), frame | PG.P | PG.W | PG.U);
              m.cpu.mmu.invalidate(GATE_ENTRY);
            } else if (c < 0.34) {
              // ring 0's code segments moved to the copy for a while (the same selectors and limit)
              const base = c < 0.32 ? ALT_FRAME : GATE_ENTRY;
              setGdt(m.cpu, KCODE >>> 3, segmentDescriptor({ base, limit: 0xfff, type: 0xa, dpl: 0 }));
              setGdt(m.cpu, KCONF >>> 3, segmentDescriptor({ base, limit: 0xfff, type: 0xe, dpl: 0 }));
            }
          }
        };
        randomLockstep(a, b, {
          rand: ctl,
          total: 6000,
          pSmall: 0.3,
          small: 10,
          max: 700,
          observe,
          what: `seed ${seed}`,
          after: () => {
            between();
            return true;
          },
        });
        traces += b.cpu.jit!.traces;
        expect(b.cpu.jit!.ran).toBeGreaterThan(1000);
      }
      expect(traces).toBeGreaterThan(60);
    });
  }

  it('made with paging off, then run with it on (and the other way round)', () => {
    const a = setUp(0, true);
    const b = setUp(1, true);
    for (const on of [false, true, false, true]) {
      for (const m of [a, b]) setPaging(m, on);
      for (let k = 0; k < 20; k++) {
        const ra: RunResult = run(a.cpu, 97);
        const rb: RunResult = run(b.cpu, 97);
        expect(rb, `paging ${on}, run ${k}`).toEqual(ra);
        expect(observe(b), `paging ${on}, run ${k}`).toEqual(observe(a));
      }
    }
    expect(b.cpu.jit!.traces).toBeGreaterThan(2);
  });

  it('end after a store into the last dword of a later part (a JMP target)', () => {
    // The first block stores the target of the second (a JMP alone) each turn: CODE_AT or, every
    // other 8 turns, CODE_AT + 8 (past the ADD to EBX). A trace that ran the JMP as compiled after
    // the store changed it would add to EBX where the run loop does not.
    const B = CODE_AT + 0x100;
    const [a, b] = pair(0, (m) => {
      program(
        m,
        enc('add reg,imm', { a: R.EBX, imm: 1 }),
        enc('add reg,imm', { a: R.ECX, imm: 1 }),
        enc('mov reg,reg', { a: R.EDX, b: R.ECX }),
        enc('and reg,imm', { a: R.EDX, imm: 8 }),
        enc('add reg,imm', { a: R.EDX, imm: CODE_AT }),
        enc('st mem,reg', { a: R.EDX, b: 8, c: 0xf, imm: B + 4 }),
        enc('jmp imm', { imm: B }),
      );
      code(m, B, enc('jmp imm', { imm: CODE_AT }));
    });
    const step = lockstep(a, b);
    randomRuns(step, 5, 300, 60);
    expect(b.cpu.jit!.traces).toBeGreaterThan(0);
    expect(b.cpu.reg[R.ECX]).toBeGreaterThan(500);
  });

  it('end after a call gate frame of 31 parameters whose top dwords went into later parts', () => {
    // A CALLF alone at C through a gate with 31 parameters; ring 0's stack top is C + 24, so the
    // 140-byte frame is C - 116 .. C + 23: parameters 27 and 28 land on the CALLF itself (the
    // caller pushes its own words), 29 and 30 on the JMP alone at C + 8 that the RETF 124 returns
    // to: its target, CODE_AT or (every other 8 turns) CODE_AT + 8, past the ADD to EBX. Only the
    // frame's top reaches code: a reach of less than 140 bytes misses it.
    const C = CODE_AT + 0x400;
    const H = 0x1c000;
    const word = (insn: Uint8Array, k: number) => new DataView(insn.buffer).getInt32(4 * k, true);
    const callf = enc('callf far', { sel: SEL.gate | 3 });
    const jmp = enc('jmp imm', { imm: CODE_AT });
    const [a, b] = pair(3, (m) => {
      m.phys.write32(0x4000 + 4, C + 24); // the TSS's ESP0 (SS0: ring 0's data, base 0)
      setGdt(
        m.cpu,
        SEL.gate >>> 3,
        gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.code(0), offset: H, dpl: 3, params: 31 }),
      );
      code(m, H, enc('add reg,imm', { a: R.EDI, imm: 1 }), enc('retf imm16', { imm: 124 }));
      program(
        m,
        enc('add reg,imm', { a: R.EBX, imm: 1 }),
        enc('add reg,imm', { a: R.ECX, imm: 1 }),
        enc('mov reg,reg', { a: R.EDX, b: R.ECX }),
        enc('and reg,imm', { a: R.EDX, imm: 8 }),
        enc('add reg,imm', { a: R.EDX, imm: CODE_AT }),
        enc('push reg', { a: R.EDX }), // parameter 30: the JMP's target
        enc('push imm', { imm: word(jmp, 0) }), // 29: the JMP's first word
        enc('push imm', { imm: word(callf, 1) }), // 28, 27: the CALLF's words
        enc('push imm', { imm: word(callf, 0) }),
        ...Array.from({ length: 27 }, (_, k) => enc('push imm', { imm: k })), // 26..0
        enc('jmp imm', { imm: C }),
      );
      code(m, C, callf, jmp);
    });
    const step = lockstep(a, b);
    randomRuns(step, 3, 300, 120);
    expect(b.cpu.jit!.traces).toBeGreaterThan(0);
    expect(b.cpu.reg[R.EDI]).toBeGreaterThan(200); // the gate's handler ran (fast path or not)
    expect(b.cpu.reg[R.EBP]).toBe(0);
  });

  it('end after an INT whose frame went into the code of a later part', () => {
    // As the CALLF frame test, through INT 0x80 (a trap gate to ring 0): the frame (EIP, CS,
    // EFLAGS, ESP, SS) from H - 4 up writes OR EAX, <EFLAGS> at H and ADD <reg>, 0x23 at H + 8,
    // <reg> from the caller's ESP (0x230: EDX, 0x330: EBX, every 8 turns the other one).
    const H = 0x1c008;
    const [a, b] = pair(3, (m) => {
      const { cpu } = m;
      setGdt(cpu, 6, segmentDescriptor({ base: 0, limit: 0xfffff, type: 0xa, dpl: 3 })); // CS 0x33
      setGdt(cpu, 4, segmentDescriptor({ base: 0, limit: 0xfffff, type: 0x2, dpl: 3 })); // SS 0x23
      loadCache(cpu, S.CS, 0x33);
      loadCache(cpu, S.SS, 0x23);
      m.phys.write32(0x4000 + 4, H + 16); // the TSS's ESP0
      idtGate(cpu, 0x80, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: H, dpl: 3 });
      code(
        m,
        H,
        enc('or reg,imm', { a: R.EAX, imm: 0 }), // the frame's CS and EFLAGS
        enc('add reg,imm', { a: R.EDX, imm: 0x23 }), // the frame's ESP and SS
        enc('add reg,reg', { a: R.ESI, b: R.EDX }),
        enc('add reg,reg', { a: R.ESI, b: R.EBX }),
        enc('add reg,reg', { a: R.ESI, b: R.EAX }),
        enc('mov reg,imm', { a: R.EAX, imm: 0 }),
        enc('iret'),
      );
      expect(m.phys.read32(H + 8)).toBe(0x230);
      program(
        m,
        enc('add reg,imm', { a: R.ECX, imm: 1 }),
        enc('mov reg,reg', { a: R.EDX, b: R.ECX }),
        enc('shr reg,imm', { a: R.EDX, imm: 3 }),
        enc('and reg,imm', { a: R.EDX, imm: 1 }),
        enc('shl reg,imm', { a: R.EDX, imm: 8 }),
        enc('add reg,imm', { a: R.EDX, imm: 0x230 }),
        enc('mov reg,reg', { a: R.ESP, b: R.EDX }),
        enc('int vec', { imm: 0x80 }),
        enc('jmp imm', { imm: CODE_AT }),
      );
    });
    const step = lockstep(a, b);
    randomRuns(step, 11, 300, 60);
    expect(b.cpu.jit!.traces).toBeGreaterThan(0);
    expect(b.cpu.reg[R.ECX]).toBeGreaterThan(500);
    expect(b.phys.read32(H + 8) & 0xff).toBe(0x30); // an ADD reg,imm still
  });

  it('give their place back to their first block when a later one changed (checked at entry)', () => {
    // Two blocks that jump to each other: a trace at the first. The host rewrites the second's
    // immediate: at its next entry the trace gives its place back to its first block and runs that
    // (the run loop then drops the second's block and runs the new code). Later the host rewrites
    // the first's: the run loop drops the trace itself (nothing ran).
    const B = CODE_AT + 0x100;
    const [a, b] = pair(0, (m) => {
      program(m, enc('add reg,imm', { a: R.EAX, imm: 1 }), enc('jmp imm', { imm: B }));
      code(m, B, enc('add reg,imm', { a: R.EBX, imm: 1 }), enc('jmp imm', { imm: CODE_AT }));
    });
    const step = lockstep(a, b);
    step(40);
    const jit = b.cpu.jit!;
    const page = jit.page(CODE_AT);
    // the trace is at whichever block's link got hot first; the other is its second part
    const [head, other] = page.blocks[0]!.path !== null ? [CODE_AT, B] : [B, CODE_AT];
    const slot = (head & 0xfff) >>> 3;
    expect(page.blocks[slot]!.path!.parts.map((p) => p.at)).toEqual([head, other]);
    expect(jit.traces).toBe(1);
    while (a.cpu.eip !== head) step(1);
    for (const m of [a, b]) m.phys.write32(other + 4, 2); // the other's ADD now adds 2
    step(2);
    expect([jit.untraced, jit.stale]).toEqual([1, 0]);
    const first = page.blocks[slot]!;
    expect([first.path, first.at, first.len]).toEqual([null, head, 2]);
    step(200);
    expect(jit.stale).toBe(1); // the other's block
    expect(jit.traces).toBeGreaterThan(1); // from the new code
    const traces = jit.traces;
    while (a.cpu.eip !== head) step(1);
    for (const m of [a, b]) m.phys.write32(head + 4, 3); // the head's ADD now adds 3
    step(2);
    expect([jit.untraced, jit.stale]).toEqual([1, 2]);
    step(200);
    expect(jit.traces).toBeGreaterThan(traces);
    expect(b.cpu.reg[R.EBX]).toBe(a.cpu.reg[R.EBX]);
  });

  it('give their place back to their first block when a later one keeps declining', () => {
    // A trace through a call gate and back; then the host marks the gate not present: the CALLF's
    // fast path declines (the run loop raises #NP, whose handler goes on after the CALLF), and
    // after DECLINES_KEPT turns with no whole run the trace gives its place back (or, the CALLF in
    // its first block, that block is cut short before it; made at the first link followed here, it
    // forms again and again). With the gate present again a trace forms anew.
    const present = (m: Machine, p: boolean) =>
      setGdt(
        m.cpu,
        SEL.gate >>> 3,
        gateDescriptor({ type: TYPE.CALL_GATE, selector: KCODE, offset: 0, dpl: 3, present: p }),
      );
    const [a, b] = pair(3, (m) => {
      setGdt(m.cpu, KCODE >>> 3, segmentDescriptor({ base: GATE_ENTRY, limit: 0xfff, type: 0xa, dpl: 0 }));
      present(m, true);
      faultHandlers(m);
      code(m, GATE_ENTRY, enc('add reg,imm', { a: R.EDI, imm: 1 }), enc('retf'));
      program(m, enc('add reg,imm', { a: R.EAX, imm: 1 }), enc('jmp imm', { imm: CODE_AT + 0x100 }));
      code(
        m,
        CODE_AT + 0x100,
        enc('add reg,imm', { a: R.EBX, imm: 1 }),
        enc('callf far', { sel: SEL.gate | 3 }),
        enc('jmp imm', { imm: CODE_AT }),
      );
    });
    const step = lockstep(a, b);
    for (let k = 0; k < 4; k++) step(53);
    const jit = b.cpu.jit!;
    const traces = jit.traces;
    expect(traces).toBeGreaterThan(0);
    for (const m of [a, b]) present(m, false);
    for (let k = 0; k < 8; k++) step(53);
    expect(jit.untraced + jit.retired).toBeGreaterThan(0);
    expect(a.cpu.reg[R.EBP]).toBeGreaterThan(20); // #NP, many times
    for (const m of [a, b]) present(m, true);
    for (let k = 0; k < 8; k++) step(53);
    expect(jit.traces).toBeGreaterThan(traces);
  });

  it('stop a run at a software interrupt the host sees first, and deliver it when it does not', () => {
    // A block compiled while the host sees software interrupts first ends with the INT all the
    // same: it stops the run there (as the run loop would), and delivers it once the host no
    // longer does (no block is cut short for that).
    const [a, b] = pair(3, (m) => {
      idtGate(m.cpu, 0x80, { type: TYPE.TRAP_GATE, selector: KCODE, offset: SYSCALL - GATE_ENTRY, dpl: 3 });
      setGdt(m.cpu, KCODE >>> 3, segmentDescriptor({ base: GATE_ENTRY, limit: 0xfff, type: 0xa, dpl: 0 }));
      code(m, SYSCALL, enc('add reg,imm', { a: R.ESI, imm: 1 }), enc('iret'));
      program(
        m,
        enc('add reg,imm', { a: R.EAX, imm: 1 }),
        enc('add reg,imm', { a: R.EBX, imm: 1 }),
        enc('int vec', { imm: 0x80 }),
        enc('jmp imm', { imm: CODE_AT }),
      );
      m.cpu.exitSoftware = true;
    });
    const step = lockstep(a, b);
    for (let k = 0; k < 6; k++) {
      const r = step(100);
      expect(r).toEqual({ reason: 'exit', vector: 0x80, software: true, executed: k === 0 ? 2 : 3 });
      for (const m of [a, b]) m.cpu.eip += 8; // the host's part: past the INT
    }
    for (const m of [a, b]) m.cpu.exitSoftware = false;
    step(1000);
    expect(b.cpu.reg[R.ESI]).toBe(a.cpu.reg[R.ESI]);
    expect(b.cpu.jit!.retired).toBe(0);
    expect(b.cpu.jit!.ran).toBeGreaterThan(900);
  });

  it('forget the translations of fixed offsets after a far transfer (a RETF to another SS each turn)', () => {
    // Ring 0 flips the SS selector in the CALLF's frame each turn, so the RETF returns to SS A and
    // SS B in turn (other bases) and ring 3's LD through SS at a fixed offset reads 0x2100, then
    // 0x3100: a trace that kept the first turn's translation would read 0x2100 every time.
    const SA = SEL.free(3) | 3;
    const SB = SEL.free(4) | 3;
    const [a, b] = pair(3, (m) => {
      const { cpu } = m;
      setGdt(cpu, SA >>> 3, segmentDescriptor({ base: 0x2000, limit: 0xfffff, type: 0x2, dpl: 3 }));
      setGdt(cpu, SB >>> 3, segmentDescriptor({ base: 0x3000, limit: 0xfffff, type: 0x2, dpl: 3 }));
      loadCache(cpu, S.SS, SA);
      gate(m, KCODE);
      setGdt(cpu, KCODE >>> 3, segmentDescriptor({ base: GATE_ENTRY, limit: 0xfff, type: 0xa, dpl: 0 }));
      code(
        m,
        GATE_ENTRY,
        enc('ld reg,mem', { a: R.EAX, b: R.ESP, c: 0xf, imm: 12 }), // the frame's SS
        enc('xor reg,imm', { a: R.EAX, imm: SA ^ SB }),
        enc('st mem,reg', { a: R.EAX, b: R.ESP, c: 0xf, imm: 12 }),
        enc('retf'),
      );
      program(
        m,
        enc('ld reg,mem', { a: R.EBX, b: 8, c: S.SS, imm: 0x100 }), // a fixed offset through SS
        enc('add reg,reg', { a: R.EDI, b: R.EBX }),
        enc('callf far', { sel: SEL.gate | 3 }),
        enc('jmp imm', { imm: CODE_AT }),
      );
      m.phys.write32(0x2100, 1);
      m.phys.write32(0x3100, 0x10000);
    });
    const step = lockstep(a, b);
    for (let k = 0; k < 10; k++) step(301);
    expect(b.cpu.jit!.traces).toBeGreaterThan(0);
    expect(a.cpu.reg[R.EDI]! >>> 16).toBeGreaterThan(100); // both SS bases read, many times
    expect(a.cpu.reg[R.EDI]! & 0xffff).toBeGreaterThan(100);
  });

  it('check the code window again after a far transfer to a code segment that moved', () => {
    // A trace through the call gate and back; then the host moves ring 0's code segment (the same
    // selector and limit, another base: a copy whose ADD adds 7) between runs: no code window fits
    // it, so the run loop builds one at the new base, and so must a trace's far link find.
    const [a, b] = twoHandlers(
      enc('add reg,imm', { a: R.EAX, imm: 1 }),
      enc('callf far', { sel: SEL.gate | 3 }),
      enc('jmp imm', { imm: CODE_AT }),
    );
    const step = lockstep(a, b);
    for (let k = 0; k < 5; k++) step(101);
    expect(b.cpu.jit!.traces).toBeGreaterThan(0);
    for (const base of [ALT_FRAME, GATE_ENTRY, ALT_FRAME]) {
      for (const m of [a, b]) {
        setGdt(m.cpu, KCODE >>> 3, segmentDescriptor({ base, limit: 0xfff, type: 0xa, dpl: 0 }));
      }
      const esi = a.cpu.reg[R.ESI]!;
      for (let k = 0; k < 3; k++) step(101);
      expect(a.cpu.reg[R.ESI]! - esi).toBeGreaterThan(base === ALT_FRAME ? 7 * 50 : 50);
    }
  });

  it('end after a store into the code of a later part (its immediate, changed every 8 turns)', () => {
    // Two blocks that jump to each other, in one page: the first stores ECX >> 3 into the second's
    // ADD immediate each turn; a trace that ran the second part as compiled after the store changed
    // it would add the old value.
    const B = CODE_AT + 0x100;
    const [a, b] = pair(0, (m) => {
      program(
        m,
        enc('add reg,imm', { a: R.ECX, imm: 1 }),
        enc('mov reg,reg', { a: R.EDX, b: R.ECX }),
        enc('shr reg,imm', { a: R.EDX, imm: 3 }),
        enc('st mem,reg', { a: R.EDX, b: 8, c: 0xf, imm: B + 4 }),
        enc('st mem,reg', { a: R.ECX, b: 8, c: 0xf, imm: B + 0x20 }), // beside the code: no part's
        enc('jmp imm', { imm: B }),
      );
      code(m, B, enc('add reg,imm', { a: R.ESI, imm: 0 }), enc('jmp imm', { imm: CODE_AT }));
    });
    const step = lockstep(a, b);
    randomRuns(step, 7, 300, 60);
    expect(b.cpu.jit!.traces).toBeGreaterThan(2);
    expect(b.cpu.reg[R.ECX]).toBeGreaterThan(1000);
    expect(b.phys.read32(B + 4)).toBe(b.cpu.reg[R.ECX]! >>> 3);
  });

  // Ring 0's stack ends in its handler's code: a CALLF from ring 3 writes its frame (EIP, CS, ESP,
  // SS, from H - 4 up) over the handler's first two instructions. With ring 3's CS 0x33 and SS
  // 0x23, those are OR EAX, <the caller's ESP> and OR EAX, EAX; ring 3 moves its ESP every 8 turns.
  // A trace that ran the handler as compiled after the frame changed it would OR in the old ESP.
  // With H at the start of a page, the frame starts in the page below (paging off: the fast path
  // writes it across the boundary; found by the review, the check looked at its first page only).
  for (const H of [0x1c008, 0x1d000]) {
    it(`end after a far transfer whose frame went into the code of a later part (handler at ${H.toString(16)})`, () => {
      const [a, b] = pair(3, (m) => {
        const { cpu } = m;
        setGdt(cpu, 6, segmentDescriptor({ base: 0, limit: 0xfffff, type: 0xa, dpl: 3 })); // CS 0x33
        setGdt(cpu, 4, segmentDescriptor({ base: 0, limit: 0xfffff, type: 0x2, dpl: 3 })); // SS 0x23
        loadCache(cpu, S.CS, 0x33);
        loadCache(cpu, S.SS, 0x23);
        m.phys.write32(0x4000 + 4, H + 12); // the TSS's ESP0 (SS0: ring 0's data, base 0)
        setGdt(
          cpu,
          SEL.gate >>> 3,
          gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.code(0), offset: H, dpl: 3 }),
        );
        code(
          m,
          H,
          enc('or reg,imm', { a: R.EAX, imm: 0 }), // the frame's CS and ESP
          enc('or reg,reg', { a: R.EAX, b: R.EAX }), // the frame's SS, and a 0 that stays
          enc('add reg,reg', { a: R.ESI, b: R.EAX }),
          enc('mov reg,imm', { a: R.EAX, imm: 0 }),
          enc('retf'),
        );
        expect(m.phys.read32(H)).toBe(0x33);
        expect(m.phys.read32(H + 8)).toBe(0x23);
        program(
          m,
          enc('add reg,imm', { a: R.ECX, imm: 1 }),
          enc('mov reg,reg', { a: R.EDX, b: R.ECX }),
          enc('shr reg,imm', { a: R.EDX, imm: 3 }),
          enc('shl reg,imm', { a: R.EDX, imm: 2 }),
          enc('mov reg,imm', { a: R.ESP, imm: 0x90000 }),
          enc('sub reg,reg', { a: R.ESP, b: R.EDX }),
          enc('callf far', { sel: SEL.gate | 3 }),
          enc('jmp imm', { imm: CODE_AT }),
        );
      });
      const step = lockstep(a, b);
      randomRuns(step, 9, 300, 60);
      expect(b.cpu.jit!.traces).toBeGreaterThan(2);
      expect(b.cpu.reg[R.ECX]).toBeGreaterThan(500);
      expect(b.phys.read32(H + 4)).toBe((0x90000 - 4 * (b.cpu.reg[R.ECX]! >>> 3)) >>> 0);
    });
  }

  it('loop in themselves when they take in a trace that leads back to their first block', () => {
    // A loop of four blocks (one that loops in itself): runs that stop anywhere make traces at
    // each of them, and a trace made later takes in one made earlier. The four traces at the
    // blocks' starts all lead back to their first block: each must loop in itself (a link from its
    // last part to its first), not return to the run loop once a turn.
    const L = CODE_AT + 8;
    for (const traceHot of [1, 2, 3, 8]) {
      const [a, b] = pair(
        0,
        (m) => {
          program(
            m,
            enc('mov reg,imm', { a: R.ECX, imm: 3 }),
            enc('add reg,imm', { a: R.EAX, imm: 1 }), // L
            enc('dec reg', { a: R.ECX }),
            enc('jnz imm', { imm: L }),
            enc('add reg,imm', { a: R.EBX, imm: 1 }),
            enc('jmp imm', { imm: CODE_AT + 0x100 }),
          );
          code(
            m,
            CODE_AT + 0x100,
            enc('add reg,imm', { a: R.EDX, imm: 1 }),
            enc('jmp imm', { imm: CODE_AT }),
          );
        },
        traceHot,
      );
      const step = lockstep(a, b);
      for (let k = 0; k < 100; k++) step(97, `traceHot ${traceHot}, run ${k}`);
      const page = b.cpu.jit!.page(CODE_AT);
      for (const at of [CODE_AT, L, CODE_AT + 0x20, CODE_AT + 0x100]) {
        const path = page.blocks[(at & 0xfff) >>> 3]!.path;
        expect(path, `traceHot ${traceHot}, ${at.toString(16)}`).not.toBe(null);
        expect(path!.parts[0]!.at).toBe(at);
        expect(path!.parts.map((p) => p.at).sort(), `traceHot ${traceHot}, ${at.toString(16)}`).toEqual([
          CODE_AT,
          L,
          CODE_AT + 0x20,
          CODE_AT + 0x100,
        ]);
        expect(path!.links.length, `traceHot ${traceHot}, ${at.toString(16)}`).toBe(4);
        // the last link leads back to the first part, a near one within the page
        const back = path!.links[3]!;
        expect([back.to, back.far, back.delta]).toEqual([path!.parts[0], false, at - path!.parts[3]!.at]);
      }
    }
  });

  it("check the code segment's base at a far link when the guest moved it inside the trace", () => {
    // Ring 3 rewrites the base of ring 0's code segment in the GDT every second turn (GATE_ENTRY,
    // whose handler adds 1, or ALT_FRAME, whose handler adds 7), then calls through the gate: a
    // trace whose far link kept trusting the code window it found for the old base would run the
    // old handler (the windows' epoch and the MMU generation do not change inside a trace).
    const [a, b] = twoHandlers(
      enc('mov reg,reg', { a: R.EAX, b: R.ECX }),
      enc('shr reg,imm', { a: R.EAX, imm: 1 }),
      enc('and reg,imm', { a: R.EAX, imm: 1 }),
      enc('mul reg,imm', { a: R.EAX, imm: ALT_FRAME - GATE_ENTRY }),
      enc('add reg,imm', { a: R.EAX, imm: GATE_ENTRY }),
      enc('st mem,reg', { a: R.EAX, b: 8, c: 0xf, imm: 0x1000 + (KCODE & ~7) }), // the base: dword 0
      enc('add reg,imm', { a: R.ECX, imm: 1 }),
      enc('callf far', { sel: SEL.gate | 3 }),
      enc('jmp imm', { imm: CODE_AT }),
    );
    const step = lockstep(a, b);
    randomRuns(step, 5, 200, 80);
    expect(b.cpu.jit!.traces).toBeGreaterThan(0);
    const turns = a.cpu.reg[R.ECX]!;
    expect(turns).toBeGreaterThan(500);
    expect(Math.abs(a.cpu.reg[R.ESI]! - 4 * turns)).toBeLessThan(20); // both handlers, half the turns each
  });
});
