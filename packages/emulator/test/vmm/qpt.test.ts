/**
 * Quick pass-through (QPT-1..6): a guest whose VEDT uses rings 0 and 3 only is recognised from its
 * VEDT; two SDTs (SDT0 = SDT_hi, SDT3 = SDT_lo) under P2; once SDT_lo is in force, calls from ring 3
 * into ring 0 through a gate and the returns run natively. A ring-1 descriptor later is a QPT
 * violation: the general scheme under P1.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../../src/machine.js';
import type { VmmEvent } from '../../src/vmm/ve.js';
import { type VeProfile, Vmm } from '../../src/vmm/vmm.js';
import { type GuestSource, guestRom } from './guest.js';

const RAM = 1 << 20;

/** Ring 3 calls ring 0 through the DPL-3 gate `calls` times; ring 0 counts and returns. */
function twoRing(calls: number, extra = ''): GuestSource {
  return {
    twoRing: true,
    main: `
main:   TO_RING3 ring3
ring3:  mov ecx, ${calls}
.loop:  callf 0x60:0
        dec ecx
        jnz .loop
        callf 0x60:1
r0_entry:
        cmp ecx, 0
        jz .done
        retf
.done:  mov eax, 0x10
        mov ds, eax
        ${extra}
        ld eax, [0x5000]
        PUTC 'Q'
        cli
        hlt
r1_entry:
r2_entry:
        hlt
`,
  };
}

function virtual(src: GuestSource, profile: Partial<VeProfile> = {}) {
  const events: VmmEvent[] = [];
  const vmm = new Vmm({ clock: () => 0, ramBytes: 8 << 20, onEvent: (e) => events.push(e) });
  const ve = vmm.createVe({ name: 'qpt', memoryBytes: RAM, rom: guestRom(src), ...profile });
  const r = vmm.run(ve.id, 1_000_000);
  return { ve, r, events, transcript: ve.vm.console.transcript() };
}

describe('quick pass-through', () => {
  it('recognises the two-ring guest from its VEDT and keeps SDT0 and SDT3 under P2', () => {
    const { ve, events, transcript, r } = virtual(twoRing(10));
    const bare = createMachine({ rom: guestRom(twoRing(10)), clock: () => 0, ramBytes: RAM });
    expect(bare.run(1_000_000)).toEqual(r);
    expect(transcript).toBe('Q');
    const s = ve.stats();
    expect([s.qpt, s.policy, s.sdtsHeld]).toEqual([true, 'P2', [0, 3]]);
    expect(events.filter((e) => e.kind === 'qpt')).toEqual([
      { kind: 'qpt', ve: ve.id, on: true, reason: 'the VEDT uses virtual rings 0 and 3 only' },
    ]);
  });

  it('ring changes through the gate are native: 10 or 1000 calls cost the VMM the same traps', () => {
    const few = virtual(twoRing(10)).ve.stats();
    const many = virtual(twoRing(1000)).ve.stats();
    expect(many.instructions - few.instructions).toBe(990 * 6); // CALLF, CMP, JZ, RETF, DEC, JNZ
    expect(many.traps).toBe(few.traps);
    expect(many.trapsByCause).toEqual(few.trapsByCause);
  });

  it('a ring-1 descriptor written later is a QPT violation: the general scheme under P1 (QPT-6)', () => {
    // Ring 0, at the end, writes a flat ring-1 code descriptor into GDT entry 3 (0x18).
    const write = `mov eax, 0
        st [0x1018], eax
        mov eax, 0xFFFFF | (1 << 23) | (0xA << 24) | (1 << 28) | (1 << 29) | (1 << 31)
        st [0x101C], eax`;
    const { ve, events, transcript } = virtual(twoRing(10, write));
    expect(transcript).toBe('Q');
    expect(events.filter((e) => e.kind === 'qpt').map((e) => (e.kind === 'qpt' ? e.on : undefined))).toEqual([
      true,
      false,
    ]);
    const s = ve.stats();
    expect([s.qpt, s.policy, s.sdtsHeld]).toEqual([false, 'P1', [ve.stats().currentSdt]]);
    expect(ve.sdtRings(s.currentSdt)![3]).toBe(s.currentSdt === 0 ? 2 : 0);
  });

  it('is not used when the profile turns it off', () => {
    const s = virtual(twoRing(10), { qpt: false, sdtPolicy: 'P3' }).ve.stats();
    expect([s.qpt, s.policy]).toEqual([false, 'P3']);
  });
});
