; The frame shared by the VM manager benchmark's guests (bench/guests/guests.ts): constants and
; macros, included at the top of both the boot ROM (boot.s) and each guest's kernel. Adapted from
; the VMM tests' scaffold (packages/emulator/test/vmm/scaffold.s).

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
KERNEL_AT equ 0x40000                ; where the boot ROM copies the kernel (RAM)

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
; PUTC 'x': print one character (ring 0 or a ring with I/O rights).
.macro PUTC ch
        mov eax, \ch
        out CON, eax
.endm

; TO_RING3 target, eflags: IRET to ring-3 code at `target` with the ring-3 stack and `eflags`
; (0x2: IOPL 0, IF 0; 0x202: IF 1).
.macro TO_RING3 target, eflags
        push 0x43
        push STACK3
        push \eflags
        push 0x3B
        push \target
        iret
.endm

; SETGATE vector, handler, type, dpl: an IDT gate to ring-0 code (type 0xE interrupt, 0xF trap).
.macro SETGATE vector, handler, gtype, dpl
        mov eax, \handler
        st [IDT_AT + (\vector) * 8], eax
        mov eax, 0x08 | ((\gtype) << 24) | ((\dpl) << 29) | (1 << 31)
        st [IDT_AT + (\vector) * 8 + 4], eax
.endm

; TIMER period: the timer raises IRQ 0 (vector 0x20) every `period` instructions, unmasked.
.macro TIMER period
        mov eax, 0xFFFE
        out 0x21, eax               ; PIC mask: line 0 only
        mov eax, \period
        out 0x40, eax               ; reload
        mov eax, 1 | 2 | 4          ; enable, periodic, IRQ
        out 0x41, eax
.endm
