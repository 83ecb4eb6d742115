; Network guests of the data-path benchmark: a flat ring-0 OS in its boot ROM that streams frames
; with credit-based flow control. The builder prepends ROLE (1 sender, 2 receiver), BURST, SIZE and
; the frames (labels data_frame, ack_frame).
;
; Sender: sends BURST copies of data_frame, then waits (STI; HLT on the NIC interrupt) for one
; frame (the receiver's credit), discards it, and again. Receiver: takes every frame into BUF and
; counts it at COUNT; after each BURST it sends ack_frame.

ROM_BASE equ 0xFFFF0000
NIC      equ 0x300
IDT_AT   equ 0x1000
TX       equ 0x4000
ACK      equ 0x5000
BUF      equ 0x6000
COUNT    equ 0x3000
STACK    equ 0x8000

start:
        lgdt [cs:gdtr - ROM_BASE]
        jmpf 0x08:flat
flat:   mov eax, 0x10
        mov ds, eax
        mov es, eax
        mov ss, eax
        mov esp, STACK
        mov eax, nic_irq
        st [IDT_AT + 0x23 * 8], eax
        mov eax, 0x08 | (0xE << 24) | (1 << 31)
        st [IDT_AT + 0x23 * 8 + 4], eax
        lidt [idtr]
        mov eax, 0xFFFF & ~(1 << 3)
        out 0x21, eax
        mov eax, 1
        out NIC + 1, eax
        mov eax, 0
        st [COUNT], eax
        ; frames into RAM (DMA reads RAM only)
        mov esi, data_frame
        mov edi, TX
        mov ecx, (SIZE + 3) / 4
.c1:    ld eax, [esi]
        st [edi], eax
        add esi, 4
        add edi, 4
        dec ecx
        jnz .c1
        mov esi, ack_frame
        mov edi, ACK
        mov ecx, 16
.c2:    ld eax, [esi]
        st [edi], eax
        add esi, 4
        add edi, 4
        dec ecx
        jnz .c2
        mov eax, ROLE
        cmp eax, 1
        jz sender

receiver:
        cli
        in eax, NIC + 3
        cmp eax, 0
        jz .wait
        mov eax, BUF
        out NIC + 4, eax
        mov eax, 1
        out NIC + 6, eax
        ld eax, [COUNT]
        inc eax
        st [COUNT], eax
        mov edx, eax
        and edx, BURST - 1
        jnz receiver
        mov eax, ACK
        out NIC + 4, eax
        mov eax, 60
        out NIC + 5, eax
        mov eax, 3
        out NIC + 6, eax
        jmp receiver
.wait:  sti
        hlt
        jmp receiver

sender:
        mov eax, TX
        out NIC + 4, eax
        mov eax, SIZE
        out NIC + 5, eax
.burst: mov ecx, BURST
.send:  mov eax, 3
        out NIC + 6, eax
        dec ecx
        jnz .send
        ld eax, [COUNT]
        add eax, BURST
        st [COUNT], eax
.credit:
        cli
        in eax, NIC + 3
        cmp eax, 0
        jnz .got
        sti
        hlt
        jmp .credit
.got:   mov eax, 2
        out NIC + 6, eax            ; DISCARD the credit
        mov eax, TX
        out NIC + 4, eax
        jmp .burst

nic_irq:
        out 0x24, eax
        iret

        .align 8
gdt:    .dword 0, 0
        .dword 0, 0x9A8FFFFF
        .dword 0, 0x928FFFFF
gdt_end:
gdtr:   .word gdt_end - gdt - 1
        .dword gdt
idtr:   .word 0x24 * 8 - 1
        .dword IDT_AT
        .align 4
;@DATA
        .org 0xFFFFFFF0
        jmp start - ROM_BASE
        .space 8, 0xFF
