; nodeos: the operating system of the "node" VE of an active-network node (docs/nodeos.md). A
; compact guest that runs from its 64 KiB boot ROM: its kernel in ring 0, one active-network
; module at a time in ring 3 (two rings only, so the VM manager runs it with quick pass-through,
; QPT-2). It has one NIC (0x300, line 3, vector 0x23) and does three things:
;
;   - boot: descriptor tables, the NIC's address, and (KEY_TRAP) the VE's key from the key trap
;     at KEY_ADDRESS (KEY-6..8), whose secret half it wipes at once: the host's agent applies it;
;   - module delivery: a clefnet transaction (type 0x88B5) from the agent's address carries a
;     CLFX image in fragments; the kernel reassembles it, checks its structure and runs it in ring 3
;     in its own segment (USER_LO, USER_SIZE);
;   - everything else received is a data frame, queued for the module's RECV system call; the
;     module sends with SEND (source address forced to the NIC's) and reports to the agent with
;     REPORT (type 0x88B6).
;
; The kernel polls the NIC; the NIC's interrupt only wakes a HLT, or, when it interrupts ring 3,
; lets the kernel take the frames that came while the module computes (so a new module replaces
; a busy one). The module reaches the kernel only through INT 0x80 (a DPL-3 trap gate); any fault
; in ring 3 unloads it.
;
; The builder (build.ts) puts its options at the OPTIONS marker near the end:
;   KEY_TRAP     1: call the key trap at boot, 0: do not
;   KEY_ADDRESS  the key trap's address
;   agent_mac:   the 6-byte address of the host's agent (the only sender of modules)
;
; Memory (physical = linear: the kernel's segments are flat, paging is off):
;   0x01000 IDT, 0x01800 GDT, 0x01900 TSS (one page: the VM manager write-protects it)
;   0x02000 COUNTERS (12 dwords, docs/nodeos.md), 0x02100 variables
;   0x02400 KEYBUF (256), 0x02800 TXBUF (1536), 0x03000 RXBUF (2048)
;   0x08000 the data-frame ring: RING_SLOTS (32) slots of 2048 bytes
;   0x18000 ASM: the module image being reassembled (128 KiB)
;   0x38000-0x3C000 the kernel stack (TSS.ESP0 = KSTACK_TOP)
;   0x40000 USER_LO: the module's segment, USER_SIZE bytes

ROM_BASE        equ 0xFFFF0000

; ---- ports (packages/emulator/src/machine.ts, devices/*.ts) ----
PIC_MASK        equ 0x21
PIC_PENDING     equ 0x22
PIC_EOI         equ 0x24
TIMER_RELOAD    equ 0x40
TIMER_CONTROL   equ 0x41
TIMER_ON        equ 7                   ; ENABLE | PERIODIC | IRQ_ENABLE
CON             equ 0x3F8
NIC             equ 0x300
NIC_CONTROL     equ NIC + 1
NIC_RX_LEN      equ NIC + 2
NIC_RX_COUNT    equ NIC + 3
NIC_ADDR        equ NIC + 4
NIC_TX_LEN      equ NIC + 5
NIC_COMMAND     equ NIC + 6
NIC_MAC_HI      equ NIC + 10
NIC_MAC_LO      equ NIC + 11
NIC_RECEIVE     equ 1
NIC_TRANSMIT    equ 3
LINE_TIMER      equ 0
LINE_NIC        equ 3

; ---- vectors and descriptors ----
VEC_TIMER       equ 0x20
VEC_NIC         equ 0x20 + LINE_NIC
VEC_SYSCALL     equ 0x80
VEC_SPURIOUS    equ 0xFF                ; pseudo-vector of the PIC's other lines
IDT_ENTRIES     equ 0x81
SEL_KCODE       equ 0x08
SEL_KDATA       equ 0x10
SEL_UCODE       equ 0x18                ; DPL 3, base USER_LO, limit USER_SIZE - 1
SEL_UDATA       equ 0x20
SEL_TSS         equ 0x28
TSS_SIZE        equ 104
INT_GATE_HI     equ SEL_KCODE | (0xE << 24) | (1 << 31)               ; DPL 0: INT n from ring 3 faults
TRAP_GATE_HI3   equ SEL_KCODE | (0xF << 24) | (3 << 29) | (1 << 31)   ; DPL 3: INT 0x80
USER_EFLAGS     equ 0x202               ; IF = 1, IOPL 0: the module can do no I/O

; ---- memory ----
IDT_AT          equ 0x1000
GDT_AT          equ 0x1800
TSS_AT          equ 0x1900
COUNTERS        equ 0x2000
VARS            equ 0x2100
KEYBUF          equ 0x2400
KEYBUF_SIZE     equ 256
TXBUF           equ 0x2800
RXBUF           equ 0x3000
RING_AT         equ 0x8000
RING_SLOTS      equ 32
RING_SLOT_SHIFT equ 11                  ; 2048-byte slots: the NIC's MTU, so RECEIVE goes straight in
ASM_AT          equ 0x18000
ASM_MAX         equ 0x20000
KSTACK_TOP      equ 0x3C000
USER_LO         equ 0x40000
USER_SIZE       equ 0x10000

; ---- limits of the system calls and frames ----
ETH_HEADER      equ 14
FRAG_HEADER     equ ETH_HEADER + 8      ; txid[4] seq[2] flags[2]
DATA_MAX        equ 1536                ; longest data frame queued for the module
WRITE_MAX       equ 512
SEND_MAX        equ 1514
REPORT_MAX      equ 1024
TYPE_TRANSACTION equ 0x88B5
TYPE_DATAGRAM_HI equ 0x88               ; 0x88B6, written byte by byte
TYPE_DATAGRAM_LO equ 0xB6
IMAGE_MAGIC     equ 0x58464C43          ; "CLFX" as a little-endian dword
IMAGE_HEADER    equ 32
KEY_TRIES       equ 8
RETRY_PERIOD    equ 25000               ; timer period (instructions) between key calls
RETRY_TICKS     equ 4

; ---- system calls (examples/modules/abi.inc has the module's side) ----
SYS_WRITE       equ 1
SYS_EXIT        equ 2
SYS_RECV        equ 3
SYS_SEND        equ 4
SYS_REPORT      equ 5
RECV_NOWAIT     equ 1

; ---- counters (dwords at COUNTERS, in this order; docs/nodeos.md) ----
C_RECEIVED      equ COUNTERS + 0        ; frames taken from the NIC
C_QUEUED        equ COUNTERS + 4        ; data frames queued for the module
C_DROPPED       equ COUNTERS + 8        ; data frames dropped (no module, ring full, too long, unread)
C_LOADED        equ COUNTERS + 12       ; modules loaded
C_BAD_IMAGES    equ COUNTERS + 16
C_FOREIGN       equ COUNTERS + 20       ; transaction frames from another address than the agent's
C_REPORTS       equ COUNTERS + 24
C_SENDS         equ COUNTERS + 28
C_ABORTED       equ COUNTERS + 32       ; module transfers aborted
C_STRAY         equ COUNTERS + 36       ; agent fragments outside an assembly (ignored)
C_FAULTS        equ COUNTERS + 40       ; modules unloaded for a fault
C_EXITS         equ COUNTERS + 44       ; modules that called EXIT
COUNTER_COUNT   equ 12

; ---- variables ----
V_MODULE        equ VARS + 0            ; 1 while a module is loaded
V_ASSEMBLING    equ VARS + 4            ; 1 while a transfer is being reassembled
V_TXID          equ VARS + 8
V_NEXT_SEQ      equ VARS + 12
V_ASM_LEN       equ VARS + 16
V_ENTRY         equ VARS + 20
V_RING_HEAD     equ VARS + 24
V_RING_COUNT    equ VARS + 28
V_TICKS         equ VARS + 32
V_TAKE_ROOM     equ VARS + 36           ; nic_service's mode: 1 = only while the ring has room
V_MAC           equ VARS + 40           ; the NIC's address, 6 bytes
V_NIC_PENDING   equ VARS + 60           ; a NIC interrupt came in ring 0: serve before ring 3
V_RING_LEN      equ VARS + 64           ; RING_SLOTS dwords: length of the frame in each slot
VARS_END        equ V_RING_LEN + RING_SLOTS * 4

; Descriptors in the machine's 8-byte layout (packages/emulator/src/cpu/descriptor.ts).
.macro FLAT type, dpl
        .dword 0
        .dword 0xFFFFF | (1 << 23) | ((\type) << 24) | (1 << 28) | ((\dpl) << 29) | (1 << 31)
.endm
.macro SEGMENT base, limit, type, dpl
        .dword \base
        .dword (\limit) | ((\type) << 24) | (1 << 28) | ((\dpl) << 29) | (1 << 31)
.endm
.macro SYSDESC base, limit, type
        .dword \base
        .dword (\limit) | ((\type) << 24) | (1 << 31)
.endm

; KPRINT msg: print the NUL-terminated string at msg. Preserves registers.
.macro KPRINT msg
        push esi
        mov esi, \msg
        call puts
        pop esi
.endm
; COUNT counter: add 1 to a counter. Preserves registers.
.macro COUNT counter
        push eax
        ld eax, [\counter]
        inc eax
        st [\counter], eax
        pop eax
.endm
; USER_RANGE ptr, len, fail: jump to fail unless [ptr, ptr + len) lies in the module's segment
; (no 32-bit overflow). Clobbers eax.
.macro USER_RANGE ptr, len, fail
        mov eax, \ptr
        add eax, \len
        jc \fail
        cmp eax, USER_SIZE
        ja \fail
.endm

; ---- boot: ring 0, CS base ROM_BASE until the far jump ----
nos_start:
        lgdt [cs:boot_gdtr - ROM_BASE]
        jmpf SEL_KCODE:nos_flat
nos_flat:
        mov eax, SEL_KDATA
        mov ds, eax
        mov es, eax
        mov ss, eax
        mov esp, KSTACK_TOP
        mov eax, 0
        mov fs, eax
        mov gs, eax
        mov edi, COUNTERS           ; counters and variables start at 0
        mov ecx, (VARS_END - COUNTERS) / 4
        call zero_dwords
        ; MACH-3: the GDT in RAM (rings 0 and 3 only, and the TSS), the IDT, the TSS
        mov esi, gdt_image
        mov edi, GDT_AT
        mov ecx, gdt_image_end - gdt_image
        call copy_bytes
        mov edi, TSS_AT
        mov ecx, TSS_SIZE / 4
        call zero_dwords
        mov eax, KSTACK_TOP
        st [TSS_AT + 4], eax        ; ESP0
        mov eax, SEL_KDATA
        st [TSS_AT + 8], eax        ; SS0
        mov eax, TSS_SIZE << 16
        st [TSS_AT + 100], eax      ; I/O map base past the limit: no port for ring 3
        lgdt [gdtr]
        jmpf SEL_KCODE:.reload
.reload:
        mov eax, SEL_KDATA
        mov ds, eax
        mov es, eax
        mov ss, eax
        call build_idt
        lidt [idtr]
        mov eax, SEL_TSS
        ltr eax
        call read_mac
        KPRINT msg_up
        mov esi, V_MAC
        call putmac
        KPRINT msg_nl
        ; the NIC's line open, its receive interrupt on: it wakes the HLTs of the kernel
        mov eax, 0xFFFF & ~(1 << LINE_NIC)
        out PIC_MASK, eax
        mov eax, 1
        out NIC_CONTROL, eax
        mov eax, KEY_TRAP
        test eax, eax
        jz kernel_idle
        call get_key

; kernel_idle: no module. Prints the waiting line and serves the NIC until a module arrives.
kernel_idle:
        mov esp, KSTACK_TOP
        KPRINT msg_waiting
wait_loop:
        cli
        call nic_service            ; a good module image does not come back
        sti
        hlt                         ; STI's shadow: an interrupt pending now still wakes the HLT
        jmp wait_loop

; get_key: the key trap (KEY-6..8, docs/dtm.md): CALL KEY_ADDRESS with EDI = a buffer, ECX = its
; size; back come EAX = status (0 key, 1 bad buffer, 2 refused), EDX = the key's version and in
; the buffer Key-VE[64] Clef-VE[64] name length[1] name. Up to KEY_TRIES calls, a timer wait
; between them. The Key-VE bytes are wiped at once: the host's agent applies the key.
get_key:
        mov ebx, 1                  ; the call's number
.try:   mov edi, KEYBUF
        mov ecx, KEYBUF_SIZE
        mov eax, KEY_ADDRESS
        call eax
        test eax, eax
        jz .got
        cmp ebx, KEY_TRIES
        jnc .give_up
        KPRINT msg_nokey
        call putdec
        KPRINT msg_retrying
        call timer_wait
        inc ebx
        jmp .try
.give_up:
        KPRINT msg_without
        ret
.got:   KPRINT msg_key
        ldb ecx, [KEYBUF + 128]
        cmp ecx, KEYBUF_SIZE - 129  ; a name longer than the buffer holds: what it holds
        jbe .name
        mov ecx, KEYBUF_SIZE - 129
.name:  mov esi, KEYBUF + 129
        call putn
        KPRINT msg_version
        mov eax, edx
        call putdec
        KPRINT msg_nl
        mov edi, KEYBUF             ; the guest keeps no secret
        mov ecx, 64 / 4
        call zero_dwords
        ret

; timer_wait: RETRY_TICKS periods of the timer, halted (no busy loop). Interrupts are off after.
timer_wait:
        push eax
        mov eax, 0
        st [V_TICKS], eax
        mov eax, 1 << LINE_TIMER
        out PIC_PENDING, eax        ; forget a tick left from the last wait
        mov eax, RETRY_PERIOD
        out TIMER_RELOAD, eax
        mov eax, TIMER_ON
        out TIMER_CONTROL, eax
        mov eax, 0xFFFF & ~((1 << LINE_TIMER) | (1 << LINE_NIC))
        out PIC_MASK, eax
.wait:  cli
        ld eax, [V_TICKS]
        cmp eax, RETRY_TICKS
        jnc .done
        sti
        hlt
        jmp .wait
.done:  mov eax, 0
        out TIMER_CONTROL, eax
        mov eax, 0xFFFF & ~(1 << LINE_NIC)
        out PIC_MASK, eax
        pop eax
        ret

; read_mac: the NIC's address into V_MAC (MAC_HI holds bytes 0-1, MAC_LO bytes 2-5, big-endian).
read_mac:
        in eax, NIC_MAC_HI
        stb [V_MAC + 1], eax
        shr eax, 8
        stb [V_MAC], eax
        in eax, NIC_MAC_LO
        stb [V_MAC + 5], eax
        shr eax, 8
        stb [V_MAC + 4], eax
        shr eax, 8
        stb [V_MAC + 3], eax
        shr eax, 8
        stb [V_MAC + 2], eax
        ret

        .include "nic.inc"
        .include "trap.inc"
        .include "kio.inc"

; ---- read-only data ----
msg_up:         .asciz "nodeos: up, mac "
msg_key:        .asciz "nodeos: key for "
msg_version:    .asciz " version "
msg_nokey:      .asciz "nodeos: no key (status "
msg_retrying:   .asciz "), retrying\n"
msg_without:    .asciz "nodeos: no key, continuing without\n"
msg_waiting:    .asciz "nodeos: waiting for a module\n"
msg_aborted:    .asciz "nodeos: module transfer aborted\n"
msg_bad:        .asciz "nodeos: bad module image ("
msg_magic:      .asciz "magic"
msg_version_r:  .asciz "version"
msg_size:       .asciz "size"
msg_entry:      .asciz "entry"
msg_close:      .asciz ")\n"
msg_replaced:   .asciz "nodeos: module replaced\n"
msg_loaded:     .asciz "nodeos: module loaded, "
msg_bytes:      .asciz " bytes, entry 0x"
msg_entering:   .asciz "nodeos: entering ring 3\n"
msg_exited:     .asciz "nodeos: module exited (code "
msg_mfault:     .asciz "nodeos: module fault "
msg_kfault:     .asciz "nodeos: kernel fault "
msg_at:         .asciz " at 0x"
msg_nl:         .asciz "\n"
hexdigits:      .ascii "0123456789abcdef"

        .align 8
; The boot GDT: flat ring-0 code and data, until the RAM GDT is loaded.
boot_gdt:
        .dword 0, 0
        FLAT 0xA, 0
        FLAT 0x2, 0
boot_gdt_end:
boot_gdtr:
        .word boot_gdt_end - boot_gdt - 1
        .dword boot_gdt
; The GDT copied to GDT_AT: virtual rings 0 and 3 only (QPT-1), the module's segments over
; [USER_LO, USER_LO + USER_SIZE) with byte-granular limits.
        .align 8
gdt_image:
        .dword 0, 0                                     ; 0x00 null
        FLAT 0xA, 0                                     ; 0x08 kernel code
        FLAT 0x2, 0                                     ; 0x10 kernel data
        SEGMENT USER_LO, USER_SIZE - 1, 0xA, 3          ; 0x18 module code (execute/read)
        SEGMENT USER_LO, USER_SIZE - 1, 0x2, 3          ; 0x20 module data and stack
        SYSDESC TSS_AT, TSS_SIZE - 1, 0x9               ; 0x28 the TSS
gdt_image_end:
gdtr:   .word gdt_image_end - gdt_image - 1
        .dword GDT_AT
idtr:   .word IDT_ENTRIES * 8 - 1
        .dword IDT_AT

;@OPTIONS@

        .org 0xFFFFFFF0
        jmp nos_start - ROM_BASE
        .space 8, 0xFF
