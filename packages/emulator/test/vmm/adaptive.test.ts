/**
 * Adaptive SDT policy (SDT-22, TB-6): an unrecognised guest starts under P1; frequent ring changes
 * move it to P3, then P2 once every ring it uses has an SDT; a guest that mostly rewrites its VEDT
 * stays under P1. A recognised guest runs the policy of its entry in KNOWN_GUESTS.
 */
import { describe, expect, it } from 'vitest';
import type { VmmEvent } from '../../src/vmm/ve.js';
import { recognise, Vmm } from '../../src/vmm/vmm.js';
import { type GuestSource, guestRom } from './guest.js';

function virtual(src: GuestSource) {
  const events: VmmEvent[] = [];
  const vmm = new Vmm({ clock: () => 0, ramBytes: 8 << 20, onEvent: (e) => events.push(e) });
  const ve = vmm.createVe({ name: 'adaptive', memoryBytes: 1 << 20, rom: guestRom(src) });
  const r = vmm.run(ve.id, 2_000_000);
  const switches = events.flatMap((e) => (e.kind === 'policy-switch' ? [`${e.from}->${e.to}`] : []));
  return { ve, r, switches, transcript: ve.vm.console.transcript() };
}

describe('adaptive selection', () => {
  it('frequent ring changes (ring 3 <-> rings 1 and 2 through gates): P1 -> P3 -> P2 once ring 2 is seen', () => {
    const { ve, switches, transcript } = virtual({
      main: `
main:   TO_RING3 ring3
ring3:  mov ecx, 200
.loop:  callf 0x50:0
        dec ecx
        jnz .loop
        callf 0x58:0
        callf 0x60:0
r1_entry:
r2_entry:
        retf
r0_entry:
        PUTC 'R'
        cli
        hlt
`,
    });
    expect(transcript).toBe('R');
    expect(switches).toEqual(['P1->P3', 'P3->P2']);
    const s = ve.stats();
    expect([s.adaptive, s.policy, s.policySwitches, s.sdtsHeld]).toEqual([true, 'P2', 2, [0, 1, 2, 3]]);
  });

  it('a guest that rewrites its VEDT and rarely changes ring stays under P1', () => {
    const { ve, switches, transcript } = virtual({
      gdt: '        SEGMENT 0x10000, 0xFFF, 0x2, 0',
      main: `
main:   mov ecx, 200
.loop:  mov eax, ecx
        shl eax, 12
        st [0x1078], eax            ; entry 15's base: a VEDT change
        dec ecx
        jnz .loop
        PUTC 'V'
        cli
        hlt
`,
    });
    expect(transcript).toBe('V');
    expect(switches).toEqual([]);
    const s = ve.stats();
    expect([s.policy, s.gdt.vedtChanges >= 200]).toEqual(['P1', true]);
  });

  it('recognises tinyos by its ROM signature (P2); a ROM without one is unknown', () => {
    const rom = new TextEncoder().encode('....tinyos ROM: reset....');
    expect(recognise(rom)?.policy).toBe('P2');
    expect(recognise(new Uint8Array(64))).toBeUndefined();
  });
});
