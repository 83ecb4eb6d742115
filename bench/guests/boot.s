; The boot ROM of the VM manager benchmark's guests (bench/guests/guests.ts), after the VMM tests'
; scaffold (packages/emulator/test/vmm/scaffold.s): it copies its GDT to RAM (so the VM manager must
; track writes to it), loads a 256-entry IDT whose first 32 handlers print the vector and halt, a TSS
; with a stack per ring, copies the guest's kernel (assembled separately at KERNEL_AT, its bytes
; placed at `kernel`) into RAM and jumps to its first instruction, `main`, in ring 0.
;
; Selectors: 0x08/0x10 ring-0 code/data, 0x18/0x20 ring 1, 0x28/0x30 ring 2, 0x38/0x40 ring 3
; (flat, 4 GiB), 0x48 TSS, 0x50 gate DPL 3 -> ring-1 `r1_entry`, 0x58 gate DPL 3 -> ring-2
; `r2_entry`, 0x60 gate DPL 3 -> ring-0 `r0_entry`, 0x68 gate DPL 2 -> ring 0 `r0_entry`,
; 0x70 a ring-1 data segment over SECRET (4 KiB), 0x78.. the guest's own entries. The kernel's
; `r0_entry`, `r1_entry`, `r2_entry` and its size KERNEL_DWORDS come as defines.
;@FRAME

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
        ; the kernel into RAM, where an OS runs (a boot loader's job): KERNEL_DWORDS from `kernel`
        mov esi, kernel
        mov edi, KERNEL_AT
        mov ecx, KERNEL_DWORDS
.kcopy: ld eax, [esi]
        st [edi], eax
        add esi, 4
        add edi, 4
        dec ecx
        jnz .kcopy
        jmp KERNEL_AT               ; main

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
idtr:   .word 256 * 8 - 1
        .dword IDT_AT
        .align 8
gdt:
        .dword 0, 0                 ; 0x00
        FLAT 0xA, 0                 ; 0x08
        FLAT 0x2, 0                 ; 0x10
        FLAT 0xA, 1                 ; 0x18
        FLAT 0x2, 1                 ; 0x20
        FLAT 0xA, 2                 ; 0x28
        FLAT 0x2, 2                 ; 0x30
        FLAT 0xA, 3                 ; 0x38
        FLAT 0x2, 3                 ; 0x40
        .dword TSS_AT, 103 | (0x9 << 24) | (1 << 31)   ; 0x48
        GATE r1_entry, 0x18, 0, 3   ; 0x50
        GATE r2_entry, 0x28, 0, 3   ; 0x58
        GATE r0_entry, 0x08, 0, 3   ; 0x60
        GATE r0_entry, 0x08, 0, 2   ; 0x68
        SEGMENT SECRET, 0xFFF, 0x2, 1 ; 0x70
; @EXTRA
gdt_end:

        .align 8
kernel:
;@KERNEL
        .org 0xFFFFFFF0
        jmp start - ROM_BASE
        .space 8, 0xFF
