/**
 * CPU benchmark (issue 3): instructions per second on (a) a compute loop and (b) a mixed workload
 * with segment loads, far calls through a call gate into ring 0 and back, INT system calls and
 * timer interrupts, every protection and limit check live. Reference points: Bochs 85-95 MIPS with
 * all checks; a bare switch-dispatch loop about 150 MIPS here. Targets: 100 and 50.
 */
import {
  createMachine,
  gateDescriptor,
  type Machine,
  OP,
  R,
  S,
  segmentDescriptor,
  TYPE,
} from '@clefnet/emulator';

function ins(name: string, f: { a?: number; b?: number; imm?: number; sel?: number } = {}): number[] {
  const out = new Uint8Array(8);
  const op = OP[name];
  if (op === undefined) throw new Error(`no instruction ${name}`);
  out[0] = op;
  out[1] = ((f.b ?? 0) << 4) | (f.a ?? 0);
  if (f.sel === undefined) out[2] = 0xf;
  else {
    out[2] = f.sel & 0xff;
    out[3] = f.sel >>> 8;
  }
  new DataView(out.buffer).setUint32(4, (f.imm ?? 0) >>> 0, true);
  return [...out];
}

const GDT = 0x1000;
const IDT = 0x2000;
const TSS = 0x3000;
const KCODE = 0x08;
const KDATA = 0x10;
const UCODE = 0x1b;
const UDATA = 0x23;
const TSS_SEL = 0x28;
const GATE = 0x33; // call gate, DPL 3
const USER = 0x10000;
const KERNEL = 0x20000;

function machine(): Machine {
  const m = createMachine({ ramBytes: 4 << 20, clock: () => 0, quantum: 4096 });
  const w = (at: number, [lo, hi]: [number, number]) => {
    m.phys.write32(at, lo);
    m.phys.write32(at + 4, hi);
  };
  const flat = 0xfffff;
  w(GDT + 8, segmentDescriptor({ base: 0, limit: flat << 12, type: 0xa, dpl: 0, g: true }));
  w(GDT + 16, segmentDescriptor({ base: 0, limit: flat << 12, type: 0x2, dpl: 0, g: true }));
  w(GDT + 24, segmentDescriptor({ base: 0, limit: flat << 12, type: 0xa, dpl: 3, g: true }));
  w(GDT + 32, segmentDescriptor({ base: 0, limit: flat << 12, type: 0x2, dpl: 3, g: true }));
  w(GDT + 40, segmentDescriptor({ base: TSS, limit: 103, type: TYPE.TSS, s: false, dpl: 0 }));
  w(GDT + 48, gateDescriptor({ type: TYPE.CALL_GATE, selector: KCODE, offset: KERNEL + 0x100, dpl: 3 }));
  m.phys.write32(TSS + 4, 0x90000); // ESP0
  m.phys.write32(TSS + 8, KDATA); // SS0
  w(IDT + 0x20 * 8, gateDescriptor({ type: TYPE.INT_GATE, selector: KCODE, offset: KERNEL + 0x200, dpl: 0 }));
  w(
    IDT + 0x80 * 8,
    gateDescriptor({ type: TYPE.TRAP_GATE, selector: KCODE, offset: KERNEL + 0x300, dpl: 3 }),
  );
  const cpu = m.cpu;
  cpu.gdtBase = GDT;
  cpu.gdtLimit = 7 * 8 - 1;
  cpu.idtBase = IDT;
  cpu.idtLimit = 256 * 8 - 1;
  return m;
}

/** Enters ring `ring` with flat segments at `eip` (what a boot loader's far jump would leave). */
function enter(m: Machine, ring: 0 | 3, eip: number): void {
  const cpu = m.cpu;
  const set = (seg: number, sel: number, index: number) => {
    cpu.segSel[seg] = sel;
    cpu.segBase[seg] = 0;
    cpu.segLimit[seg] = 0xffffffff;
    cpu.segHi[seg] = m.phys.read32(GDT + index * 8 + 4);
    cpu.segFlags[seg] = seg === S.CS ? 1 | 2 | 8 : 1 | 2 | 4;
  };
  set(S.CS, ring === 0 ? KCODE : UCODE, ring === 0 ? 1 : 3);
  for (const s of [S.SS, S.DS, S.ES, S.FS, S.GS]) set(s, ring === 0 ? KDATA : UDATA, ring === 0 ? 2 : 4);
  cpu.trSel = TSS_SEL;
  cpu.trBase = TSS;
  cpu.trLimit = 103;
  cpu.trUsable = true;
  cpu.reg[R.ESP] = 0x80000;
  cpu.eip = eip;
}

function mips(m: Machine, instructions: number): number {
  m.run(100_000); // warm up
  const start = performance.now();
  let executed = 0;
  while (executed < instructions) {
    const r = m.run(1_000_000);
    executed += r.executed;
    if (r.reason !== 'budget') throw new Error(`stopped: ${JSON.stringify(r)}`);
  }
  return executed / ((performance.now() - start) * 1000);
}

function compute(): number {
  const m = machine();
  const loop = [
    ...ins('add reg,reg', { a: R.EAX, b: R.EBX }),
    ...ins('xor reg,imm', { a: R.EBX, imm: 0x5a5a }),
    ...ins('shl reg,imm', { a: R.EDX, imm: 1 }),
    ...ins('or reg,reg', { a: R.EDX, b: R.EAX }),
    ...ins('ld reg,mem', { a: R.ESI, b: 8, imm: 0x40000 }),
    ...ins('add reg,imm', { a: R.ESI, imm: 1 }),
    ...ins('st mem,reg', { a: R.ESI, b: 8, imm: 0x40000 }),
    ...ins('dec reg', { a: R.ECX }),
    ...ins('jmp imm', { imm: USER }),
  ];
  m.phys.writeBytes(USER, Uint8Array.from(loop));
  enter(m, 0, USER);
  return mips(m, 30_000_000);
}

function mixed(): number {
  const m = machine();
  // Ring 3: data-segment loads, a far call through the gate, a system call, arithmetic.
  const user = [
    ...ins('mov reg,imm', { a: R.EAX, imm: UDATA }),
    ...ins('mov sreg,reg', { a: S.DS, b: R.EAX }),
    ...ins('mov sreg,reg', { a: S.ES, b: R.EAX }),
    ...ins('callf far', { sel: GATE, imm: 0 }),
    ...ins('int vec', { imm: 0x80 }),
    ...ins('add reg,imm', { a: R.EBX, imm: 3 }),
    ...ins('ld reg,mem', { a: R.ESI, b: 8, imm: 0x40000 }),
    ...ins('jmp imm', { imm: USER }),
  ];
  // Ring 0: gate target (retf to ring 3), timer handler (EOI, iret), system call (iret).
  const gate = [...ins('add reg,imm', { a: R.EDI, imm: 1 }), ...ins('retf')];
  const timer = [
    ...ins('push reg', { a: R.EAX }),
    ...ins('mov reg,imm', { a: R.EAX, imm: 0 }),
    ...ins('out port,reg', { a: R.EAX, imm: 0x24 }), // PIC EOI
    ...ins('pop reg', { a: R.EAX }),
    ...ins('iret'),
  ];
  const syscall = [...ins('add reg,imm', { a: R.EBP, imm: 1 }), ...ins('iret')];
  m.phys.writeBytes(USER, Uint8Array.from(user));
  m.phys.writeBytes(KERNEL + 0x100, Uint8Array.from(gate));
  m.phys.writeBytes(KERNEL + 0x200, Uint8Array.from(timer));
  m.phys.writeBytes(KERNEL + 0x300, Uint8Array.from(syscall));
  // Timer: periodic every 10 000 instructions, unmasked at the PIC.
  m.io.write(0x21, 0xfffe);
  m.io.write(0x40, 10_000);
  m.io.write(0x41, 1 | 2 | 4);
  enter(m, 3, USER);
  m.cpu.eflags |= 1 << 9; // IF
  return mips(m, 10_000_000);
}

export function main(): void {
  const a = compute();
  console.log(`compute loop: ${a.toFixed(1)} MIPS`);
  const b = mixed();
  console.log(`mixed (segment loads, gate calls, INT syscalls, timer interrupts): ${b.toFixed(1)} MIPS`);
  console.log(`RESULT mips_compute=${a.toFixed(1)} mips_mixed=${b.toFixed(1)}`);
}
