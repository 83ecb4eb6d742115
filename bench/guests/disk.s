; Disk guest of the data-path benchmark: a flat ring-0 OS in its boot ROM that moves its disk in
; 8-sector (4 KiB) commands, in a loop over the whole disk, and uses every byte: after a READ it
; sums the buffer; before a WRITE it fills it. Completion by the disk's interrupt (line 2, vector
; 0x22): STI; HLT until it comes, so time passes without polling. The builder prepends
; COMMAND (1 read, 2 write) and SECTORS. Completed commands are counted at COUNT.

ROM_BASE equ 0xFFFF0000
DISK     equ 0x1F0
IDT_AT   equ 0x1000
COUNT    equ 0x3000
DONE     equ 0x3004
BUF      equ 0x40000
STACK    equ 0x8000

start:
        lgdt [cs:gdtr - ROM_BASE]
        jmpf 0x08:flat
flat:   mov eax, 0x10
        mov ds, eax
        mov es, eax
        mov ss, eax
        mov esp, STACK
        mov eax, disk_irq
        st [IDT_AT + 0x22 * 8], eax
        mov eax, 0x08 | (0xE << 24) | (1 << 31)
        st [IDT_AT + 0x22 * 8 + 4], eax
        lidt [idtr]
        mov eax, 0xFFFF & ~(1 << 2)
        out 0x21, eax
        mov eax, 1
        out DISK + 5, eax           ; interrupt on completion
        mov eax, 8
        out DISK + 1, eax           ; COUNT
        mov eax, BUF
        out DISK + 2, eax           ; ADDR
        mov eax, 0
        st [COUNT], eax
        mov ebx, 0                  ; LBA
        mov edx, 0                  ; the running sum
next:
        mov eax, COMMAND
        cmp eax, 2
        jnz .go
        mov esi, BUF                ; a write: fill the buffer first
        mov ecx, 1024
.fill:  st [esi], edx
        add edx, ecx
        add esi, 4
        dec ecx
        jnz .fill
.go:    mov eax, 0
        st [DONE], eax
        out DISK, ebx
        mov eax, COMMAND
        out DISK + 3, eax
.wait:  cli
        ld eax, [DONE]
        cmp eax, 0
        jnz .done
        sti
        hlt
        jmp .wait
.done:  mov eax, COMMAND
        cmp eax, 1
        jnz .count
        mov esi, BUF                ; a read: sum the buffer
        mov ecx, 1024
.sum:   ld eax, [esi]
        add edx, eax
        add esi, 4
        dec ecx
        jnz .sum
.count: ld eax, [COUNT]
        inc eax
        st [COUNT], eax
        add ebx, 8
        cmp ebx, SECTORS
        jnz next
        mov ebx, 0
        jmp next

disk_irq:
        push eax
        mov eax, 1
        st [DONE], eax
        out 0x24, eax               ; EOI
        pop eax
        iret

        .align 8
gdt:    .dword 0, 0
        .dword 0, 0x9A8FFFFF
        .dword 0, 0x928FFFFF
gdt_end:
gdtr:   .word gdt_end - gdt - 1
        .dword gdt
idtr:   .word 0x23 * 8 - 1
        .dword IDT_AT
        .org 0xFFFFFFF0
        jmp start - ROM_BASE
        .space 8, 0xFF
