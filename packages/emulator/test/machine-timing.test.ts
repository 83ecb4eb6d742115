/**
 * Exact device time (machine.ts): a device event happens at the instruction its timing says,
 * whatever the quantum the machine slices its runs in. Device time advances as instructions
 * retire, the accessing instruction's own retirement included: a timer started (or restarted) by
 * the instruction at count n expires when the count reaches n + RELOAD, a disk command issued at
 * count n completes when it reaches n + latency, and the interrupt is taken before that
 * instruction. The same programs run with quanta 1, 7, 1000 and 100000 must give the same
 * interrupt arrivals, the same values read from the devices and the same final machine state.
 */
import {
  assemble,
  createMachine,
  gateDescriptor,
  type Machine,
  memoryBlockBackend,
  R,
  S,
  segmentDescriptor,
  TYPE,
} from '@clefnet/emulator';
import { describe, expect, it } from 'vitest';

const GDT = 0x1000;
const IDT = 0x2000;
const CODE = 0x10000;
const LOG = 0x30000;
const QUANTA = [1, 7, 1000, 100_000];

/** A ring-0 machine with flat segments, the program at CODE and interrupt gates to its handlers. */
function boot(source: string, quantum: number, handlers: ReadonlyMap<number, string>): Machine {
  const disk = memoryBlockBackend(64);
  for (let i = 0; i < disk.bytes.length; i++) disk.bytes[i] = (i * 7) & 0xff;
  const m = createMachine({ ramBytes: 1 << 20, clock: () => 0, quantum, disk });
  const prog = assemble(source, { origin: CODE });
  m.phys.writeBytes(CODE, prog.bytes);
  const w = (at: number, [lo, hi]: [number, number]) => {
    m.phys.write32(at, lo);
    m.phys.write32(at + 4, hi);
  };
  w(GDT + 8, segmentDescriptor({ base: 0, limit: 0xffffffff, type: 0xa, dpl: 0 }));
  w(GDT + 16, segmentDescriptor({ base: 0, limit: 0xffffffff, type: 0x2, dpl: 0 }));
  for (const [vector, label] of handlers) {
    const offset = prog.labels.get(label)!;
    w(IDT + vector * 8, gateDescriptor({ type: TYPE.INT_GATE, selector: 8, offset, dpl: 0 }));
  }
  const cpu = m.cpu;
  cpu.gdtBase = GDT;
  cpu.gdtLimit = 3 * 8 - 1;
  cpu.idtBase = IDT;
  cpu.idtLimit = 256 * 8 - 1;
  for (let s = 0; s < 6; s++) {
    cpu.segSel[s] = s === S.CS ? 8 : 16;
    cpu.segBase[s] = 0;
    cpu.segLimit[s] = 0xffffffff;
    cpu.segHi[s] = m.phys.read32((s === S.CS ? GDT + 8 : GDT + 16) + 4);
    cpu.segFlags[s] = s === S.CS ? 1 | 2 | 8 : 1 | 2 | 4;
  }
  cpu.reg[R.ESP] = 0x80000;
  cpu.eip = CODE;
  return m;
}

interface Outcome {
  /** `cpu.instructions` after each handler's first instruction retired. */
  readonly arrivals: number[];
  readonly result: { reason: string; executed: number; idle: number };
  readonly log: number[];
  readonly state: string;
}

function outcome(
  source: string,
  quantum: number,
  handlers: ReadonlyMap<number, string>,
  budget: number,
): Outcome {
  const m = boot(source, quantum, handlers);
  const entries = new Set(
    [...handlers.values()].map((l) => assemble(source, { origin: CODE }).labels.get(l)!),
  );
  const arrivals: number[] = [];
  m.cpu.trace = (cpu, eip) => {
    if (entries.has(eip)) arrivals.push(cpu.instructions);
  };
  const r = m.run(budget);
  const log = Array.from({ length: 32 }, (_, i) => m.phys.read32(LOG + 4 * i));
  return {
    arrivals,
    result: { reason: r.reason, executed: r.executed, idle: r.idle },
    log,
    state: Buffer.from(m.save()).toString('base64'),
  };
}

/** Periodic timer; the handler logs COUNT and restarts the timer with a longer period each time. */
const TIMER = `
        mov eax, 0xfffe         ; unmask line 0 (timer)
        out 0x21, eax
        mov eax, 37
        out 0x40, eax           ; RELOAD 37
        sti
        mov eax, 7              ; ENABLE | PERIODIC | IRQ_ENABLE: COUNT = 37 at count 6
        out 0x41, eax
        mov edi, ${LOG}
loop:   in eax, 0x42            ; COUNT, read mid-slice
        add esi, eax
        inc ecx
        jmp loop
tick:   push eax
        in eax, 0x42            ; COUNT seen by the handler
        st [edi], eax
        add edi, 4
        ld eax, [period]
        add eax, 11
        st [period], eax
        out 0x40, eax           ; a new RELOAD ...
        mov eax, 15             ; ... and RESTART: the next expiry is RELOAD from this instruction
        out 0x41, eax
        mov eax, 0
        out 0x24, eax           ; EOI
        pop eax
        iret
period: .dword 37
`;

/** A disk read by interrupt; the handler logs STATUS and issues the next read until 6 are done. */
const DISK = `
        mov eax, 0xfffb         ; unmask line 2 (disk)
        out 0x21, eax
        sti
        mov eax, 1
        out 0x1f5, eax          ; CONTROL: interrupt on completion
        mov eax, 1
        out 0x1f1, eax          ; COUNT 1
        mov eax, 0x40000
        out 0x1f2, eax          ; ADDR
        mov edi, ${LOG}
        mov eax, 1
        out 0x1f3, eax          ; READ at count 11: completes at 11 + 64
loop:   in eax, 0x1f4           ; STATUS, read mid-slice
        add esi, eax
        inc ecx
        cmp ecx, 40
        jnz loop
        hlt                     ; wait for the disk: time passes while halted
        mov ecx, 0
        jmp loop
done:   push eax
        in eax, 0x1f4
        st [edi], eax
        add edi, 4
        mov eax, 0
        out 0x24, eax           ; EOI
        ld eax, [count]
        add eax, 1
        st [count], eax
        cmp eax, 6
        jz .last
        out 0x1f0, eax          ; LBA = count
        mov eax, 1
        out 0x1f3, eax          ; the next READ, from the handler
.last:  pop eax
        iret
count:  .dword 0
`;

describe('exact device time: the same run whatever the quantum', () => {
  it('timer: interrupts at count start + RELOAD, restarted from the handler, COUNT read mid-slice', () => {
    const runs = QUANTA.map((q) => ({ q, o: outcome(TIMER, q, new Map([[0x20, 'tick']]), 3000) }));
    const first = runs[0]!.o;
    // Started by the instruction at count 6 with RELOAD 37: the interrupt comes before instruction
    // 43, the handler's first instruction, after which the count is 44.
    expect(first.arrivals[0]).toBe(44);
    // The handler restarts the timer with RELOAD 48 at its 10th instruction (count 43 + 9 = 52):
    // the next interrupt comes before instruction 52 + 48 = 100.
    expect(first.arrivals[1]).toBe(101);
    expect(first.arrivals.length).toBeGreaterThan(10);
    for (const { q, o } of runs) {
      expect(o.arrivals, `quantum ${q}: arrivals`).toEqual(first.arrivals);
      expect(o.log, `quantum ${q}: COUNT seen by the handler`).toEqual(first.log);
      expect(o.result, `quantum ${q}: run result`).toEqual(first.result);
      expect(o.state === first.state, `quantum ${q}: final machine state equals quantum 1's`).toBe(true);
    }
  });

  it('disk: completion at count issue + latency, from the main program, the handler and while halted', () => {
    const runs = QUANTA.map((q) => ({ q, o: outcome(DISK, q, new Map([[0x22, 'done']]), 3000) }));
    const first = runs[0]!.o;
    // READ issued by the instruction at count 11 (0-based), latency 64: the interrupt comes before
    // instruction 75, after which the count is 76.
    expect(first.arrivals[0]).toBe(76);
    expect(first.arrivals.length).toBe(6);
    expect(first.result.idle, 'some commands completed while the CPU was halted').toBeGreaterThan(0);
    for (const { q, o } of runs) {
      expect(o.arrivals, `quantum ${q}: arrivals`).toEqual(first.arrivals);
      expect(o.log, `quantum ${q}: STATUS seen by the handler`).toEqual(first.log);
      expect(o.result, `quantum ${q}: run result`).toEqual(first.result);
      expect(o.state === first.state, `quantum ${q}: final machine state equals quantum 1's`).toBe(true);
    }
  });
});
