; The firewall's operating system (FW-1, FW-5, CFG-5): a compact, single-purpose guest that runs
; from its boot ROM in virtual ring 0 of the firewall VE and does nothing but filter. It has two
; NICs: the inside one (0x300, line 3, vector 0x23) on the inside DTM and the outside one (0x310,
; line 4, vector 0x24) towards the gateway (FW-2). Every frame it receives on one side is checked
; against that direction's table of allowed ethernet types; an allowed frame is sent on the other
; side with the firewall's own address there as source (it routes, it does not bridge), and an
; inbound one is addressed to the inside host its rule names (the host that takes that kind of
; inbound traffic); everything else is dropped and counted. Nothing passes except through this loop
; (FW-3).
;
; The builder (build.ts) prepends the rules as equates and data:
;   out_types / in_types: lists of 12-byte rules {type dword, inside address[6], 0, 0} ended by a
;   zero dword; an inbound rule's address is where frames of its type go (outbound: unused, zero)
; Counters at STATS (dwords): +0 forwarded outward, +4 forwarded inward, +8 dropped.

ROM_BASE equ 0xFFFF0000
IN_NIC   equ 0x300
OUT_NIC  equ 0x310
CON      equ 0x3F8
IDT_AT   equ 0x1000
BUF      equ 0x2000
STATS    equ 0x3000
MACS     equ 0x3100                 ; its own addresses: +0 inside NIC, +8 outside NIC
STACK    equ 0x8000
VECTORS  equ 0x25
RULE_BYTES equ 12

fw_start:
        lgdt [cs:fw_gdtr - ROM_BASE]
        jmpf 0x08:fw_flat
fw_flat:
        mov eax, 0x10
        mov ds, eax
        mov es, eax
        mov ss, eax
        mov esp, STACK
        ; the IDT: every vector to fw_fault, the two NIC vectors to fw_irq (interrupt gates, DPL 0)
        mov ecx, 0
.idt:   mov edx, ecx
        shl edx, 3
        add edx, IDT_AT
        mov eax, fw_fault
        st [edx], eax
        mov eax, 0x08 | (0xE << 24) | (1 << 31)
        st [edx + 4], eax
        inc ecx
        cmp ecx, VECTORS
        jnz .idt
        mov eax, fw_irq
        st [IDT_AT + 0x23 * 8], eax
        st [IDT_AT + 0x24 * 8], eax
        lidt [fw_idtr]
        mov eax, 0
        st [STATS], eax
        st [STATS + 4], eax
        st [STATS + 8], eax
        ; lines 3 and 4 unmasked; both NICs interrupt on receive
        mov eax, 0xFFFF & ~((1 << 3) | (1 << 4))
        out 0x21, eax
        mov eax, 1
        out IN_NIC + 1, eax
        out OUT_NIC + 1, eax
        ; both NICs receive into and transmit from BUF: ADDR is set once
        mov eax, BUF
        out IN_NIC + 4, eax
        out OUT_NIC + 4, eax
        ; its two addresses, read once
        mov esi, IN_NIC
        mov edi, MACS
        call fw_mac
        mov esi, OUT_NIC
        mov edi, MACS + 8
        call fw_mac
        mov esi, msg_up
        call fw_puts

fw_loop:
        cli
        in eax, IN_NIC + 3
        cmp eax, 0
        jz .outside
        mov esi, IN_NIC
        mov edi, OUT_NIC
        mov ebp, out_types
        call fw_forward
        jmp fw_loop
.outside:
        in eax, OUT_NIC + 3
        cmp eax, 0
        jz .idle
        mov esi, OUT_NIC
        mov edi, IN_NIC
        mov ebp, in_types
        call fw_forward
        jmp fw_loop
.idle:  sti
        hlt
        jmp fw_loop

; fw_mac: the address of the NIC at esi into the 6 bytes at edi (MAC_HI, MAC_LO are big-endian).
fw_mac:
        mov edx, esi
        add edx, 10
        in eax, edx
        stb [edi + 1], eax
        shr eax, 8
        stb [edi], eax
        mov edx, esi
        add edx, 11
        in eax, edx
        stb [edi + 5], eax
        shr eax, 8
        stb [edi + 4], eax
        shr eax, 8
        stb [edi + 3], eax
        shr eax, 8
        stb [edi + 2], eax
        ret

; fw_forward: takes the head frame of the NIC at esi into BUF; if its type is in the list at ebp,
; sends it on the NIC at edi (source = that NIC's address; inbound: destination = the rule's host).
; Four port accesses per forwarded frame: RX_LEN, RECEIVE, TX_LEN, TRANSMIT.
fw_forward:
        mov edx, esi
        add edx, 2
        in ecx, edx                 ; ecx = length
        mov edx, esi
        add edx, 6
        mov eax, 1
        out edx, eax                ; RECEIVE into BUF
        cmp ecx, 14
        jc .drop
        ldb eax, [BUF + 12]
        shl eax, 8
        ldb ebx, [BUF + 13]
        or eax, ebx                 ; eax = type
.rule:  ld ebx, [ebp]
        cmp ebx, 0
        jz .drop
        cmp ebx, eax
        jz .pass
        add ebp, RULE_BYTES
        jmp .rule
.pass:  mov ebx, MACS
        cmp edi, IN_NIC
        jz .src
        add ebx, 8
.src:   ld eax, [ebx]
        st [BUF + 6], eax
        ldb eax, [ebx + 4]
        stb [BUF + 10], eax
        ldb eax, [ebx + 5]
        stb [BUF + 11], eax
        cmp edi, IN_NIC
        jnz .send
        ld eax, [ebp + 4]           ; inbound: to the inside host of the matching rule
        st [BUF], eax
        ldb eax, [ebp + 8]
        stb [BUF + 4], eax
        ldb eax, [ebp + 9]
        stb [BUF + 5], eax
.send:  mov edx, edi
        add edx, 5
        out edx, ecx                ; TX_LEN
        mov edx, edi
        add edx, 6
        mov eax, 3
        out edx, eax                ; TRANSMIT from BUF
        mov ebx, STATS
        cmp edi, OUT_NIC
        jz .count
        add ebx, 4
        jmp .count
.drop:  mov ebx, STATS + 8
.count: ld eax, [ebx]
        inc eax
        st [ebx], eax
        ret

fw_irq:
        out 0x24, eax               ; EOI: the loop polls both NICs
        iret

fw_fault:
        mov esi, msg_fault
        call fw_puts
        cli
        hlt

fw_puts:
        ldb eax, [esi]
        cmp eax, 0
        jz .done
        out CON, eax
        inc esi
        jmp fw_puts
.done:  ret

msg_up:    .asciz "firewall: up\n"
msg_fault: .asciz "firewall: fault\n"

        .align 8
fw_gdt:
        .dword 0, 0
        .dword 0, 0x9A8FFFFF        ; 0x08 flat ring-0 code
        .dword 0, 0x928FFFFF        ; 0x10 flat ring-0 data
fw_gdt_end:
fw_gdtr:
        .word fw_gdt_end - fw_gdt - 1
        .dword fw_gdt
fw_idtr:
        .word VECTORS * 8 - 1
        .dword IDT_AT

;@RULES

        .org 0xFFFFFFF0
        jmp fw_start - ROM_BASE
        .space 8, 0xFF
