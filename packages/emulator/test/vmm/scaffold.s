; A small four-ring guest for the VM manager's tests, run from its boot ROM. It copies its GDT to
; RAM (so the VM manager must track writes to it), loads an IDT whose handlers print the vector and
; halt, a TSS with a stack per ring, then jumps to `main`, which the test supplies. Console output
; (port 0x3F8) is how a test sees what happened.
;
; Selectors: 0x08/0x10 ring-0 code/data, 0x18/0x20 ring 1, 0x28/0x30 ring 2, 0x38/0x40 ring 3
; (flat, 4 GiB), 0x48 TSS, 0x50 gate DPL 3 -> ring-1 `r1_entry`, 0x58 gate DPL 3 -> ring-2
; `r2_entry`, 0x60 gate DPL 3 -> ring-0 `r0_entry`, 0x68 gate DPL 2 -> ring 0 `r0_entry`,
; 0x70 a ring-1 data segment over SECRET (4 KiB) (with `twoRing`, the entries of rings 1 and 2 and
; the gates to them are null, and the guest uses rings 0 and 3 only), 0x78.. the test's own entries. `main`, `r0_entry`,
; `r1_entry` and `r2_entry` come from the test.

ROM_BASE equ 0xFFFF0000
GDT_AT   equ 0x1000
IDT_AT   equ 0x2000
TSS_AT   equ 0x3000
SECRET   equ 0x4000
STACK0   equ 0x8000
STACK1   equ 0x9000
STACK2   equ 0xA000
STACK3   equ 0xB000
CON      equ 0x3F8

.macro FLAT type, dpl
        .dword 0
        .dword 0xFFFFF | (1 << 23) | ((\type) << 24) | (1 << 28) | ((\dpl) << 29) | (1 << 31)
.endm
.macro SEGMENT base, limit, type, dpl
        .dword \base
        .dword (\limit) | ((\type) << 24) | (1 << 28) | ((\dpl) << 29) | (1 << 31)
.endm
.macro GATE offset, sel, params, dpl
        .dword \offset
        .dword (\sel) | ((\params) << 16) | (0xC << 24) | ((\dpl) << 29) | (1 << 31)
.endm
;@RINGS12
; PUTC 'x': print one character (ring 0 or a ring with I/O rights).
.macro PUTC ch
        mov eax, \ch
        out CON, eax
.endm

start:
        lgdt [cs:rom_gdtr - ROM_BASE]
        jmpf 0x08:flat
flat:
        mov eax, 0x10
        mov ds, eax
        mov es, eax
        mov ss, eax
        mov esp, STACK0
        ; the GDT into RAM
        mov esi, gdt
        mov edi, GDT_AT
        mov ecx, (gdt_end - gdt) / 4
.gcopy: ld eax, [esi]
        st [edi], eax
        add esi, 4
        add edi, 4
        dec ecx
        jnz .gcopy
        lgdt [gdtr]
        jmpf 0x08:.reload
.reload:
        ; the IDT: vectors 0..31 -> fault_N, each an interrupt gate DPL 0
        mov ecx, 0
.icopy: mov eax, ecx
        shl eax, 4                  ; fault stubs are 16 bytes apart
        add eax, fault_stubs
        mov edx, ecx
        shl edx, 3
        add edx, IDT_AT
        st [edx], eax
        mov eax, 0x08 | (0xE << 24) | (1 << 31)
        st [edx + 4], eax
        inc ecx
        cmp ecx, 32
        jnz .icopy
        lidt [idtr]
        ; the TSS: SS0:ESP0 .. SS2:ESP2, no I/O map
        mov eax, STACK0
        st [TSS_AT + 4], eax
        mov eax, 0x10
        st [TSS_AT + 8], eax
        mov eax, STACK1
        st [TSS_AT + 12], eax
        mov eax, 0x21
        st [TSS_AT + 16], eax
        mov eax, STACK2
        st [TSS_AT + 20], eax
        mov eax, 0x32
        st [TSS_AT + 24], eax
        mov eax, 104 << 16
        st [TSS_AT + 100], eax
        mov eax, 0x48
        ltr eax
        ; a secret for ring 1 only
        mov eax, 0x5EC2E7
        st [SECRET], eax
        jmp main

; fault_N: print '!', the vector as two hex digits, '\n', then halt with interrupts off.
        .align 16
fault_stubs:
;@STUBS
fault_common:
        mov eax, 0x10
        mov ds, eax
        PUTC '!'
        mov eax, ebx
        shr eax, 4
        ldb eax, [eax + hex]
        out CON, eax
        mov eax, ebx
        and eax, 15
        ldb eax, [eax + hex]
        out CON, eax
        PUTC 10
        cli
        hlt

; to_ring3 target: IRET to ring-3 code at `target` with the ring-3 stack, IOPL 0, IF 0.
.macro TO_RING3 target
        push 0x43
        push STACK3
        push 0x2
        push 0x3B
        push \target
        iret
.endm

hex:    .ascii "0123456789ABCDEF"
        .align 8
rom_gdt:
        .dword 0, 0
        FLAT 0xA, 0
        FLAT 0x2, 0
rom_gdt_end:
rom_gdtr:
        .word rom_gdt_end - rom_gdt - 1
        .dword rom_gdt
gdtr:   .word gdt_end - gdt - 1
        .dword GDT_AT
idtr:   .word 32 * 8 - 1
        .dword IDT_AT
        .align 8
gdt:
        .dword 0, 0                 ; 0x00
        FLAT 0xA, 0                 ; 0x08
        FLAT 0x2, 0                 ; 0x10
        RING12 0xA, 1               ; 0x18
        RING12 0x2, 1               ; 0x20
        RING12 0xA, 2               ; 0x28
        RING12 0x2, 2               ; 0x30
        FLAT 0xA, 3                 ; 0x38
        FLAT 0x2, 3                 ; 0x40
        .dword TSS_AT, 103 | (0x9 << 24) | (1 << 31)   ; 0x48
        GATE12 r1_entry, 0x18, 0, 3 ; 0x50
        GATE12 r2_entry, 0x28, 0, 3 ; 0x58
        GATE r0_entry, 0x08, 0, 3   ; 0x60
        GATE12 r0_entry, 0x08, 0, 2 ; 0x68
        SEG12 SECRET, 0xFFF, 0x2, 1 ; 0x70
; @EXTRA
gdt_end:

;@MAIN
        .org 0xFFFFFFF0
        jmp start - ROM_BASE
        .space 8, 0xFF
