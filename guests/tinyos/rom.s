; tinyos boot ROM (BOOT-2, BOOT-3, BOOT-6). Assembled with origin 0xFFFF0000: a 64 KiB image whose
; last byte is 0xFFFFFFFF. The CPU resets in ring 0 with CS base 0xFFFF0000, EIP 0xFFF0 and data
; segment caches of base 0, limit 0xFFFF. The ROM loads a three-entry flat GDT of its own, reads
; the boot header from disk sector 0, loads the kernel it names by DMA (polling the controller's
; BUSY bit: no interrupts yet), checks the kernel's 32-bit sum and jumps to its entry in ring 0.

        .include "layout.inc"

ROM_BASE equ 0xFFFF0000
ROM_CODE equ 0x08                   ; flat ring-0 code in the ROM's own GDT
ROM_DATA equ 0x10                   ; flat ring-0 data

; Until the far jump below, CS has base ROM_BASE: near targets and CS-relative data are written
; as offsets (label - ROM_BASE). DS still has the reset limit 0xFFFF and cannot reach the ROM,
; so LGDT reads its operand through CS (a readable code segment).
rom_start:
        lgdt [cs:rom_gdtr - ROM_BASE]
        jmpf ROM_CODE:rom_flat      ; CS = flat ring-0 code: labels are linear addresses from here

rom_flat:
        mov eax, ROM_DATA
        mov ds, eax
        mov es, eax
        mov fs, eax
        mov gs, eax
        mov ss, eax
        mov esp, ROM_STACK
        mov esi, msg_hello
        call rom_puts

        ; The boot header: where the kernel is, how big, where it goes, its checksum.
        mov eax, BOOT_HDR_LBA
        mov ecx, 1
        mov edx, BOOT_HDR
        call rom_disk_read
        ld eax, [BOOT_HDR + HDR_MAGIC]
        cmp eax, BOOT_MAGIC
        jnz rom_bad_header
        ld ecx, [BOOT_HDR + HDR_SECTORS]
        cmp ecx, 0
        jz rom_bad_header
        cmp ecx, KERNEL_SECTORS_MAX
        ja rom_bad_header

        mov esi, msg_load
        call rom_puts
        mov eax, ecx
        call rom_putdec
        mov esi, msg_from
        call rom_puts
        ld eax, [BOOT_HDR + HDR_LBA]
        call rom_putdec
        mov esi, msg_to
        call rom_puts
        ld eax, [BOOT_HDR + HDR_LOAD]
        call rom_puthex
        mov esi, msg_nl
        call rom_puts

        ld eax, [BOOT_HDR + HDR_LBA]
        ld ecx, [BOOT_HDR + HDR_SECTORS]
        ld edx, [BOOT_HDR + HDR_LOAD]
        call rom_disk_read

        ; BOOT-3: a 32-bit sum over the image's dwords must match the header.
        ld esi, [BOOT_HDR + HDR_LOAD]
        ld ecx, [BOOT_HDR + HDR_BYTES]
        shr ecx, 2
        mov eax, 0
.sum:   ld edx, [esi]
        add eax, edx
        add esi, 4
        dec ecx
        jnz .sum
        ld edx, [BOOT_HDR + HDR_SUM]
        cmp eax, edx
        jnz rom_bad_sum
        mov esi, msg_sum_ok
        call rom_puts
        call rom_puthex
        mov esi, msg_jump
        call rom_puts
        ld eax, [BOOT_HDR + HDR_ENTRY]
        call rom_puthex
        mov esi, msg_nl
        call rom_puts
        ld eax, [BOOT_HDR + HDR_ENTRY]
        jmp eax                     ; into the kernel, still ring 0, flat ROM segments, paging off

rom_bad_header:
        mov esi, msg_bad_header
        jmp rom_fail
rom_bad_sum:
        mov esi, msg_bad_sum
        jmp rom_fail
rom_disk_error:
        mov esi, msg_disk_error
rom_fail:
        call rom_puts
        cli
        hlt                         ; IF = 0: the machine stops with reason 'halt'

; rom_disk_read: ecx sectors from LBA eax to physical address edx, polling STATUS.BUSY.
rom_disk_read:
        out DISK_LBA, eax
        out DISK_COUNT, ecx
        out DISK_ADDR, edx
        mov eax, 0
        out DISK_CONTROL, eax       ; no completion interrupt: the ROM polls
        mov eax, DISK_READ
        out DISK_COMMAND, eax
.busy:  in eax, DISK_STATUS
        test eax, 1
        jnz .busy
        shr eax, 8                  ; bits 8..15: error of the last command
        test eax, eax
        jnz rom_disk_error
        ret

; rom_puts: the NUL-terminated string at esi. The ROM runs in ring 0, so it writes the port itself.
rom_puts:
        push eax
        push esi
.next:  ldb eax, [esi]
        test eax, eax
        jz .done
        out CON_DATA, eax
        inc esi
        jmp .next
.done:  pop esi
        pop eax
        ret

; rom_puthex: eax as 0x followed by 8 hex digits.
rom_puthex:
        push eax
        push ecx
        push edx
        mov edx, eax
        mov eax, '0'
        out CON_DATA, eax
        mov eax, 'x'
        out CON_DATA, eax
        mov ecx, 8
.digit: mov eax, edx
        shr eax, 28
        ldb eax, [eax + rom_hex]
        out CON_DATA, eax
        shl edx, 4
        dec ecx
        jnz .digit
        pop edx
        pop ecx
        pop eax
        ret

; rom_putdec: eax in decimal (at most 10 digits, built backwards on the stack).
rom_putdec:
        push eax
        push ecx
        push edx
        mov ecx, 0
.digit: mov edx, eax
        remu edx, 10
        push edx
        inc ecx
        divu eax, 10
        test eax, eax
        jnz .digit
.out:   pop eax
        add eax, '0'
        out CON_DATA, eax
        dec ecx
        jnz .out
        pop edx
        pop ecx
        pop eax
        ret

rom_hex:        .ascii "0123456789ABCDEF"
msg_hello:      .asciz "tinyos ROM: reset at 0xFFFFFFF0, flat GDT loaded\n"
msg_load:       .asciz "tinyos ROM: loading "
msg_from:       .asciz " kernel sectors from LBA "
msg_to:         .asciz " to "
msg_sum_ok:     .asciz "tinyos ROM: kernel sum ok "
msg_jump:       .asciz ", jumping to "
msg_nl:         .asciz "\n"
msg_bad_header: .asciz "tinyos ROM: no bootable kernel (bad boot header)\n"
msg_bad_sum:    .asciz "tinyos ROM: kernel checksum mismatch\n"
msg_disk_error: .asciz "tinyos ROM: disk error\n"

        .align 8
rom_gdt:
        .dword 0, 0
        .dword 0, 0x9A8FFFFF        ; 0x08 code: base 0, limit 4 GiB (G), type 0xA, S, DPL 0, P
        .dword 0, 0x928FFFFF        ; 0x10 data: base 0, limit 4 GiB (G), type 0x2 (writable), DPL 0, P
rom_gdt_end:
rom_gdtr:
        .word rom_gdt_end - rom_gdt - 1
        .dword rom_gdt

        .org 0xFFFFFFF0
reset_vector:                       ; BOOT-6: the first instruction after reset
        jmp rom_start - ROM_BASE
        .space 8, 0xFF              ; pad to 0xFFFFFFFF: the image is exactly 64 KiB
