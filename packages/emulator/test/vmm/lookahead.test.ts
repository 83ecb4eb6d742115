/**
 * Interrupt lookahead (ve.ts `step`, VeProfile.interruptLookahead): after delivering a virtual
 * interrupt the VM manager lets the virtual CPU run the handler until it returns, up to the limit,
 * so a short handler's OUT (EOI) and IRET, which trap one by one natively, cost no entry each. The
 * guest must not see it: every run below ends with the bare machine's CPU state, RAM, transcript
 * and instructions retired, with the lookahead on, off and shorter than the handler.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMachine } from '../../src/machine.js';
import { VmmError } from '../../src/vmm/errors.js';
import { Vmm } from '../../src/vmm/vmm.js';
import { cpuState } from './fuzz/harness.js';
import { guestRom, timerSetup } from './guest.js';

const RAM = 1 << 20;
const BUDGET = 200_000;
/** Ticks counted by the handler. */
const COUNT = 0x7000;

/**
 * Ring 3 loops with IF = 1; the timer (IRQ 0, vector 0x20) fires every 997 instructions; its
 * handler (interrupt gate, ring 0) runs `pad` extra instructions, counts the tick, ends it (EOI)
 * and returns: 8 + pad instructions.
 */
function timerGuest(pad: number): Uint8Array {
  return guestRom({
    main: `
main:
${timerSetup(997, { periodic: true })}
        push 0x43
        push 0xB000
        push 0x202
        push 0x3B
        push ring3
        iret
ring3:  mov eax, 0x43
        mov ds, eax
        mov ecx, 0
.loop:  add ecx, 1
        add edx, ecx
        jmp .loop
tick:   push eax
${'        add ebx, 1\n'.repeat(pad)}        ld eax, [${COUNT}]
        inc eax
        st [${COUNT}], eax
        mov eax, 0
        out 0x24, eax               ; EOI
        pop eax
        iret
`,
  });
}

function bare(rom: Uint8Array, quantum?: number, budget = BUDGET) {
  const m = createMachine({
    rom,
    clock: () => 0,
    ramBytes: RAM,
    ...(quantum === undefined ? {} : { quantum }),
  });
  const r = m.run(budget);
  return { r, cpu: cpuState(m.cpu), ram: m.phys.ram.slice(), transcript: m.console.transcript() };
}

/** RAM compared by digest (a deep comparison of 1 MiB is slow). */
function digest(ram: Uint8Array): string {
  return createHash('sha256').update(ram).digest('hex');
}

function virtual(rom: Uint8Array, interruptLookahead?: number, quantum?: number, budget = BUDGET) {
  const vmm = new Vmm({ clock: () => 0, ramBytes: 8 << 20 });
  const ve = vmm.createVe({
    name: 't',
    memoryBytes: RAM,
    rom,
    ...(interruptLookahead === undefined ? {} : { interruptLookahead }),
    ...(quantum === undefined ? {} : { quantum }),
  });
  const r = vmm.run(ve.id, budget);
  return {
    r,
    cpu: cpuState(ve.vcpu),
    ram: ve.guestRam(),
    transcript: ve.vm.console.transcript(),
    stats: ve.stats(),
  };
}

function ticks(ram: Uint8Array): number {
  return new DataView(ram.buffer, ram.byteOffset).getUint32(COUNT, true);
}

describe('interrupt lookahead', () => {
  it('a short handler runs whole on the virtual CPU: one entry per tick, the bare machine’s state', () => {
    const rom = timerGuest(0);
    const b = bare(rom);
    const n = ticks(b.ram);
    expect(n).toBe(199); // BUDGET / 997 (less the setup's instructions)
    const on = virtual(rom);
    const off = virtual(rom, 0);
    for (const v of [on, off]) {
      expect(v.r).toEqual(b.r);
      expect(v.cpu).toEqual(b.cpu);
      expect(digest(v.ram)).toBe(digest(b.ram));
      expect(v.transcript).toBe(b.transcript);
      expect(v.stats.interrupts).toBe(n);
      expect(v.stats.ringChanges).toEqual({ '0->3': n + 1, '3->0': n });
    }
    // Off: the handler's OUT and IRET trap at every tick (and three OUTs and the IRET of the setup).
    expect([
      off.stats.trapsByCause['#GP out'],
      off.stats.trapsByCause['#GP iret'],
      off.stats.lookahead,
    ]).toEqual([3 + n, 1 + n, 0]);
    // On (the default, 16): the 7 instructions after the delivery's first run with it.
    expect([on.stats.trapsByCause['#GP out'], on.stats.trapsByCause['#GP iret'], on.stats.lookahead]).toEqual(
      [3, 1, 7 * n],
    );
    expect(on.stats.traps).toBe(off.stats.traps - 2 * n);
  });

  it('a handler longer than the lookahead runs the rest natively: its OUT and IRET trap again', () => {
    const rom = timerGuest(20);
    const b = bare(rom);
    const n = ticks(b.ram);
    const v = virtual(rom, 16);
    expect(v.r).toEqual(b.r);
    expect(v.cpu).toEqual(b.cpu);
    expect(digest(v.ram)).toBe(digest(b.ram));
    expect([v.stats.trapsByCause['#GP out'], v.stats.trapsByCause['#GP iret'], v.stats.lookahead]).toEqual([
      3 + n,
      1 + n,
      16 * n,
    ]);
  });

  it('slices of 5 instructions cut the lookahead short where they end; the devices keep the bare time', () => {
    const rom = timerGuest(0);
    const b = bare(rom, 5);
    for (const v of [virtual(rom, 16, 5), virtual(rom, 3, 5)]) {
      expect(v.r).toEqual(b.r);
      expect(v.cpu).toEqual(b.cpu);
      expect(digest(v.ram)).toBe(digest(b.ram));
      expect(v.stats.interrupts).toBe(ticks(b.ram));
    }
  });

  it('a run that ends inside a handler ends where the bare machine’s does', () => {
    const rom = timerGuest(0);
    // The instruction that starts the first tick's handler (ring 0 after ring 3), one by one.
    const m = createMachine({ rom, clock: () => 0, ramBytes: RAM });
    let n = 0;
    for (let ring3 = false; ; ) {
      m.run(1);
      n++;
      if ((m.cpu.segSel[1]! & 3) === 3) ring3 = true;
      else if (ring3) break;
    }
    for (const k of [n - 1, n, n + 1, n + 3, n + 7, n + 8]) {
      const b = bare(rom, undefined, k);
      const v = virtual(rom, 16, undefined, k);
      expect([k, v.r, v.cpu]).toEqual([k, b.r, b.cpu]);
    }
  });

  it('an interrupt pending behind STI is taken after the next instruction, as on the bare machine', () => {
    // Ring 0 with IF = 0 lets the timer (every 50 instructions) raise its line, then STI: the bare
    // CPU runs the one instruction after STI (ESI = 100) and takes the interrupt; the handler
    // keeps ESI. Before the fix the VE ran on natively until its next trap.
    const rom = guestRom({
      main: `
main:
${timerSetup(50)}
        mov ecx, 100
.wait:  dec ecx
        jnz .wait
        sti
        mov esi, 100
        mov esi, 200
        mov esi, 300
.spin:  jmp .spin
tick:   st [${COUNT}], esi
        cli
        hlt
`,
    });
    const b = bare(rom);
    expect(ticks(b.ram)).toBe(100);
    for (const v of [virtual(rom), virtual(rom, 0)]) {
      expect(v.r).toEqual(b.r);
      expect(v.cpu).toEqual(b.cpu);
      expect(digest(v.ram)).toBe(digest(b.ram));
    }
  });

  it('an interrupt whose delivery faults counts the instructions the bare machine counts', () => {
    // The timer's gate is not present: the delivery raises #NP, whose handler prints "!0B".
    const rom = guestRom({
      main: `
main:
${timerSetup(50, { present: false })}
        sti
.spin:  add esi, 1
        jmp .spin
tick:   hlt
`,
    });
    const b = bare(rom);
    expect(b.transcript).toBe('!0B\n');
    for (const v of [virtual(rom), virtual(rom, 0)]) {
      expect(v.transcript).toBe(b.transcript);
      expect(v.r).toEqual(b.r);
      expect(v.cpu).toEqual(b.cpu);
      expect(digest(v.ram)).toBe(digest(b.ram));
    }
  });

  it('a lookahead that is not an integer from 0 to 4096 is refused before the VE exists', () => {
    const vmm = new Vmm({ clock: () => 0, ramBytes: 8 << 20 });
    for (const bad of [-1, 1.5, 4097, Number.NaN]) {
      const create = () =>
        vmm.createVe({ name: 't', memoryBytes: RAM, rom: timerGuest(0), interruptLookahead: bad });
      expect(create).toThrow(VmmError);
      expect(create).toThrow(/interruptLookahead must be an integer from 0 to 4096/);
    }
    expect(vmm.list()).toEqual([]);
  });
});
