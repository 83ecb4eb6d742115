/**
 * Guests that move frames through their NIC, for the data-path tests: a sender that transmits a
 * list of frames built into its ROM, and a receiver that copies every frame it finds into a log in
 * its RAM. Both run at virtual ring 0 on the VMM tests' scaffold; every NIC access is a real I/O
 * trap emulated against the VE's own NIC.
 */
import { memoryNvramBackend } from '../../src/devices/nvram.js';
import type { VirtualEnvironment } from '../../src/vmm/ve.js';
import type { Vmm } from '../../src/vmm/vmm.js';
import { guestRom } from '../vmm/guest.js';

export const NIC = 0x300;
/** Where the receiver keeps its log: a dword count, then per frame a dword length and the bytes (padded to 4). */
export const LOG = 0x40000;
export const TX_BUF = 0x10000;
/** A paused sender spins until the test writes a non-zero dword here. */
export const GO = 0x50000;

function dataLines(frames: readonly Uint8Array[]): string {
  const lines: string[] = [];
  for (const f of frames) {
    lines.push(`        .dword ${f.length}`);
    const padded = new Uint8Array(Math.ceil(f.length / 4) * 4);
    padded.set(f);
    for (let i = 0; i < padded.length; i += 16) {
      lines.push(`        .byte ${Array.from(padded.subarray(i, i + 16)).join(', ')}`);
    }
  }
  lines.push('        .dword 0');
  return lines.join('\n');
}

/**
 * Transmits `frames` in order, printing `T` after each, then `.` and halts. With `pauseAfter`, it
 * prints `|` after that many frames and spins until the dword at GO is set ({@link resume}), then
 * sends the rest.
 */
export function senderRom(frames: readonly Uint8Array[], pauseAfter = -1): Uint8Array {
  return guestRom({
    main: `
main:   mov esi, frames
        mov ebx, 0
.next:  ld ecx, [esi]
        cmp ecx, 0
        jz .done
        cmp ebx, ${pauseAfter}
        jnz .go
        PUTC '|'
.spin:  ld eax, [${GO}]
        cmp eax, 0
        jz .spin
.go:    add esi, 4
        mov edi, ${TX_BUF}
        mov edx, ecx
        add ecx, 3
        shr ecx, 2
.copy:  ld eax, [esi]
        st [edi], eax
        add esi, 4
        add edi, 4
        dec ecx
        jnz .copy
        mov eax, ${TX_BUF}
        out ${NIC + 4}, eax
        out ${NIC + 5}, edx
        mov eax, 3
        out ${NIC + 6}, eax
        add ebx, 1
        PUTC 'T'
        jmp .next
.done:  PUTC '.'
        hlt
        jmp .done
        .align 4
frames:
${dataLines(frames)}
`,
  });
}

/**
 * Scaffold assembly that makes the NIC's receive interrupt (line 3, vector 0x23) reach `nic_irq`
 * (which the program supplies: EOI and IRET) and enables it; the IDT grows to 0x24 entries.
 */
export const NIC_IRQ_SETUP = `mov eax, nic_irq
        st [IDT_AT + 0x23 * 8], eax
        mov eax, 0x08 | (0xE << 24) | (1 << 31)
        st [IDT_AT + 0x23 * 8 + 4], eax
        mov eax, (0x24 * 8 - 1) | (IDT_AT << 16)
        st [0x5000], eax
        mov eax, IDT_AT >> 16
        st [0x5004], eax
        lidt [0x5000]
        mov eax, 0xFFFF & ~(1 << 3)
        out 0x21, eax
        mov eax, 1
        out ${NIC + 1}, eax`;

/**
 * Receives frames into the log at LOG, printing `R` for each. When its queue is empty it waits for
 * the NIC's receive interrupt (vector 0x23, line 3 unmasked) with STI; HLT: a run then stops
 * (halted, no device event due), and the next run after a delivery takes the interrupt and goes on.
 */
export function receiverRom(): Uint8Array {
  return guestRom({
    main: `
main:   ${NIC_IRQ_SETUP}
        mov edi, ${LOG + 4}
        mov ebx, 0
        st [${LOG}], ebx
.poll:  cli
        in eax, ${NIC + 3}
        cmp eax, 0
        jz .wait
        in edx, ${NIC + 2}
        st [edi], edx
        add edi, 4
        out ${NIC + 4}, edi
        mov eax, 1
        out ${NIC + 6}, eax
        add edx, 3
        shr edx, 2
        shl edx, 2
        add edi, edx
        add ebx, 1
        st [${LOG}], ebx
        PUTC 'R'
        jmp .poll
.wait:  sti
        hlt
        jmp .poll
nic_irq:
        out 0x24, eax
        iret
`,
  });
}

/** The frames a receiver has logged, exactly. */
export function received(ve: VirtualEnvironment): Uint8Array[] {
  const ram = ve.vm.phys.ram;
  const v = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const n = v.getUint32(LOG, true);
  const out: Uint8Array[] = [];
  let at = LOG + 4;
  for (let i = 0; i < n; i++) {
    const len = v.getUint32(at, true);
    out.push(ram.slice(at + 4, at + 4 + len));
    at += 4 + Math.ceil(len / 4) * 4;
  }
  return out;
}

/** Lets a paused sender go on. */
export function resume(ve: VirtualEnvironment): void {
  new DataView(ve.vm.phys.ram.buffer, ve.vm.phys.ram.byteOffset).setUint32(GO, 1, true);
}

export function consoleText(ve: VirtualEnvironment): string {
  return ve.vm.console.transcript();
}

/** A VE running `rom` with 1 MiB of RAM. */
export function netVe(vmm: Vmm, name: string, rom: Uint8Array): VirtualEnvironment {
  return vmm.createVe({ name, memoryBytes: 1 << 20, rom, nvram: memoryNvramBackend() });
}

/** An ethernet frame. */
export function ether(
  dst: Uint8Array,
  src: Uint8Array,
  type: number,
  payload: Uint8Array | string,
): Uint8Array {
  const p = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const f = new Uint8Array(14 + p.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >>> 8;
  f[13] = type & 0xff;
  f.set(p, 14);
  return f;
}

/** A transaction fragment's payload: txid, seq, flags (LAST on the last), data. */
export function fragment(txid: number, seq: number, last: boolean, data: Uint8Array | string): Uint8Array {
  const d = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const p = new Uint8Array(8 + d.length);
  const v = new DataView(p.buffer);
  v.setUint32(0, txid);
  v.setUint16(4, seq);
  v.setUint16(6, last ? 1 : 0);
  p.set(d, 8);
  return p;
}

/** A modem-link (PPP-like) frame. */
export function modem(protocol: number, payload: Uint8Array | string): Uint8Array {
  const p = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const f = new Uint8Array(4 + p.length);
  f.set([0xff, 0x03, protocol >>> 8, protocol & 0xff]);
  f.set(p, 4);
  return f;
}
