/**
 * The fixed part of every fuzz guest (assembly, appended to scaffold.s's `main`): fault handlers
 * that print the vector and error code and resume after the faulting instruction (so one fault
 * does not end a program; after MAX_FAULTS the program ends), the checkpoint `r0_entry` (gate 0x60)
 * that prints a hash of the general registers and data selectors, the end `fz_final` (gate 0x78,
 * entry 15) that prints them in full and halts, and the pseudo-descriptors LGDT/LIDT load.
 *
 * The handlers use no data segment (CS-relative table reads, SS-relative counters: ring 0's SS is
 * always the flat 0x10) and never read a selector a native instruction pushed (known.ts).
 */

/** Guest-physical layout of the fuzz guests (scaffold.s: GDT 0x1000, IDT 0x2000, TSS 0x3000, stacks 0x7000-0xAFFF). */
export const LAYOUT = {
  gdt: 0x1000,
  idt: 0x2000,
  tss: 0x3000,
  ldt: 0x5000,
  faultCount: 0x6000,
  gdtCopy: 0x6800,
  /** GDT entries (scaffold 0..14, final gate 15, the fuzzer's 16..63). */
  gdtEntries: 64,
  firstFree: 16,
  idtEntries: 48,
  stacks: [0x8000, 0x9000, 0xa000, 0xb000],
  /** The stack pages: where native code pushes selectors with the real RPL. */
  stackLow: 0x7000,
  stackHigh: 0xb000,
} as const;

/** Faults after which the handler stops the program (bounds fault loops). */
export const MAX_FAULTS = 24;

/** The selector of the final-digest gate (entry 15). */
export const FINAL_GATE = 0x78;
/** The checkpoint gate of scaffold.s (DPL 3 -> ring-0 `r0_entry`). */
export const CHECKPOINT_GATE = 0x60;

const WITH_ERROR = new Set([8, 10, 11, 12, 13, 14, 17]);

/**
 * Fault stubs for vectors 0..31, 32 bytes apart from fz_fs_0: each pushes a dummy error code if
 * the CPU pushes none, then the vector.
 */
function stubs(): string {
  const out: string[] = [];
  for (let v = 0; v < 32; v++) {
    out.push('        .align 32', `fz_fs_${v}:`);
    if (!WITH_ERROR.has(v)) out.push('        push 0');
    out.push(`        push ${v}`, '        jmp fz_fault');
  }
  return out.join('\n');
}

/** Setup lines for `main` (ring 0, DS flat): IDT entries 0..31 point at the stubs (interrupt gates, DPL 0). */
export const IDT_SETUP = `        mov ecx, 0
.idt:   mov eax, ecx
        shl eax, 5
        add eax, fz_fs_0
        mov edx, ecx
        shl edx, 3
        st [edx+${LAYOUT.idt}], eax
        mov eax, 0x8E000008
        st [edx+${LAYOUT.idt + 4}], eax
        inc ecx
        cmp ecx, 32
        jnz .idt`;

const PUSH_ALL = ['eax', 'ecx', 'edx', 'ebx', 'ebp', 'esi', 'edi'].map((r) => `        push ${r}`).join('\n');
const POP_ALL = ['edi', 'esi', 'ebp', 'ebx', 'edx', 'ecx', 'eax'].map((r) => `        pop ${r}`).join('\n');

export const RUNTIME = `
FZ_COUNT equ ${LAYOUT.faultCount}
FZ_MAXF  equ ${MAX_FAULTS}

; ---- faults: print "!vv:eeee", resume after the faulting instruction ----
${stubs()}
fz_fault:
        push eax
        push ecx
        ; [esp] ecx, +4 eax, +8 vector, +12 error code, +16 EIP, +20 CS, +24 EFLAGS
        ld eax, [ss:FZ_COUNT]
        inc eax
        st [ss:FZ_COUNT], eax
        cmp eax, FZ_MAXF
        jnc fz_stop
        PUTC '!'
        ld eax, [esp+8]
        shl eax, 24
        mov ecx, 2
        call fz_hex
        PUTC ':'
        ld eax, [esp+12]
        shl eax, 16
        mov ecx, 4
        call fz_hex
        PUTC 10
        ld eax, [esp+16]
        add eax, 8
        st [esp+16], eax
        pop ecx
        pop eax
        add esp, 8
        iret
        jmp fz_stop
fz_stop:
        PUTC 'X'
        jmp fz_final

; fz_hex: print the ECX top nibbles of EAX (clobbers EAX, ECX)
fz_hex:
        push ebx
.l:     mov ebx, eax
        shr ebx, 28
        ldb ebx, [cs:ebx+hex]
        out CON, ebx
        shl eax, 4
        dec ecx
        jnz .l
        pop ebx
        ret

; fz_regs: print the 7 registers pushed before the call, DS ES FS GS, newline (clobbers EAX-EDX)
fz_regs:
        mov ebx, esp
        add ebx, 4
        mov edx, 7
.l:     ld eax, [ss:ebx]
        mov ecx, 8
        call fz_hex
        PUTC ' '
        add ebx, 4
        dec edx
        jnz .l
        mov eax, ds
        shl eax, 16
        mov ecx, 4
        call fz_hex
        mov eax, es
        shl eax, 16
        mov ecx, 4
        call fz_hex
        mov eax, fs
        shl eax, 16
        mov ecx, 4
        call fz_hex
        mov eax, gs
        shl eax, 16
        mov ecx, 4
        call fz_hex
        PUTC 10
        ret

; fz_digest: print an FNV-1a hash of the 7 registers pushed before the call and DS ES FS GS
fz_digest:
        mov ebx, esp
        add ebx, 4
        mov edx, 7
        mov eax, 0x811c9dc5
.l:     ld ecx, [ss:ebx]
        xor eax, ecx
        mul eax, 0x01000193
        add ebx, 4
        dec edx
        jnz .l
        mov ecx, ds
        xor eax, ecx
        mov ecx, es
        xor eax, ecx
        mul eax, 0x01000193
        mov ecx, fs
        xor eax, ecx
        mov ecx, gs
        xor eax, ecx
        mul eax, 0x01000193
        mov ecx, 8
        call fz_hex
        PUTC 10
        ret

; checkpoint (gate 0x60 from any ring, 0x68 from rings 0-2): "#" and the digest, then back
r0_entry:
${PUSH_ALL}
        PUTC '#'
        call fz_digest
${POP_ALL}
        retf

; the end (gate 0x78 from any ring, or too many faults): "=" and the registers, halt
fz_final:
${PUSH_ALL}
        PUTC '='
        call fz_regs
${POP_ALL}
.h:     cli
        hlt
        jmp .h

        .align 8
fz_idtr:        .word ${LAYOUT.idtEntries * 8 - 1}
                .dword ${LAYOUT.idt}
fz_idtr_small:  .word ${32 * 8 - 1}
                .dword ${LAYOUT.idt}
fz_gdtr:        .word ${LAYOUT.gdtEntries * 8 - 1}
                .dword ${LAYOUT.gdt}
fz_gdtr_small:  .word 0x7f
                .dword ${LAYOUT.gdt}
fz_gdtr_odd:    .word ${LAYOUT.gdtEntries * 8 - 5}
                .dword ${LAYOUT.gdt}
fz_gdtr_copy:   .word ${LAYOUT.gdtEntries * 8 - 1}
                .dword ${LAYOUT.gdtCopy}
        .align 8
`;
