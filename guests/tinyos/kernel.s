; tinyos kernel: loaded by the boot ROM at KERNEL_LOAD and entered in ring 0 with paging off.
;
; What runs where (MACH-5: every procedure belongs to one ring):
;   ring 0  this kernel: descriptor tables, paging, the disk (by interrupt), the file table, the
;           scheduler, INT 0x80 system calls, exceptions and the timer (kernel.s, trap.s, disk.s)
;   ring 1  the console driver, the only code that writes the console port: EFLAGS.IOPL = 1 lets
;           rings 0 and 1 use IN/OUT; rings 2 and 3 go through the TSS I/O bitmap, which denies the
;           console (console1.s). The kernel reaches it by an outward RETF; it comes back through a
;           DPL-1 call gate. User programs reach it through a DPL-3 call gate.
;   ring 2  the file service: owns a DPL-2 data segment holding README.TXT, reached by user programs
;           through a DPL-3 call gate (files2.s)
;   ring 3  the user programs A..E, loaded from disk files, scheduled round-robin by the timer
;
; Memory: one address space, identity-mapped. Kernel text is supervisor and read-only (CR0.WP makes
; that hold for rings 0-2 too); kernel data, stacks, the file cache and SECRET_PAGE are supervisor
; (U = 0); each user slot has a U code page (read-only) and a U data/stack page.

        .include "layout.inc"
        .org KERNEL_LOAD

TSS_ESP0        equ 4               ; TSS offsets as x86's 32-bit TSS (src/cpu/descriptor.ts)
TSS_IOMAP       equ 102
TSS_SIZE        equ 104
IOMAP_BYTES     equ 0x400 / 8       ; bitmap for ports 0..0x3FF; every higher port is denied
TSS_LIMIT       equ TSS_SIZE + IOMAP_BYTES  ; includes the 0xFF byte that ends the bitmap

; Descriptors in our own 8-byte layout (src/cpu/descriptor.ts): dword 0 = base or gate offset;
; dword 1 = limit 0-19 (or the gate's selector 0-15 and parameter count 16-20), G 23, type 24-27,
; S 28, DPL 29-30, P 31.
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
.macro GATE offset, sel, params, dpl
        .dword \offset
        .dword (\sel) | ((\params) << 16) | (0xC << 24) | ((\dpl) << 29) | (1 << 31)
.endm
INT_GATE_HI     equ SEL_CODE0 | (0xE << 24) | (1 << 31)                 ; DPL 0: INT n from ring 3 faults
TRAP_GATE_HI3   equ SEL_CODE0 | (0xF << 24) | (3 << 29) | (1 << 31)     ; DPL 3: INT 0x80 allowed from ring 3

; USER_RANGE ptr, len, maxlen, fail: jump to fail unless len <= maxlen and [ptr, ptr + len) lies
; in the user slots. Clobbers eax. Rings 1 and 2 must check this themselves: to the MMU they are
; supervisor rings, so paging alone would let a user hand them kernel addresses.
.macro USER_RANGE ptr, len, maxlen, fail
        cmp \len, \maxlen
        ja \fail
        cmp \ptr, USER_LO
        jc \fail
        mov eax, \ptr
        add eax, \len
        jc \fail
        cmp eax, USER_HI
        ja \fail
.endm

; KPRINT label: print the NUL-terminated kernel string at label (through ring 1).
.macro KPRINT msg
        push esi
        mov esi, \msg
        call kputz
        pop esi
.endm
; KHEX reg: print reg as 0x........
.macro KHEX r
        push eax
        mov eax, \r
        call kputhex
        pop eax
.endm

; KDEC reg: print reg in decimal
.macro KDEC r
        push eax
        mov eax, \r
        call kputdec
        pop eax
.endm

        .data
        .align 4096                 ; kernel data starts on its own page: text pages stay read-only
kdata_start:
        .text

; ---- boot: ring 0, paging off, the ROM's flat segments ----
kentry:
        lgdt [kgdtr]                ; MACH-3: the kernel's own GDT (segments for rings 0-3, TSS, gates)
        jmpf SEL_CODE0:.reload
.reload:
        mov eax, SEL_DATA0
        mov ds, eax
        mov es, eax
        mov fs, eax
        mov gs, eax
        mov ss, eax
        mov esp, KSTACK_TOP
        call build_idt
        lidt [kidtr]                ; MACH-3: exceptions, the timer and disk lines, INT 0x80
        mov eax, SEL_TSS
        ltr eax                     ; the TSS: SS0:ESP0, SS1:ESP1, SS2:ESP2 and the I/O bitmap
        pushf                       ; EFLAGS.IOPL = 1 (only ring 0 can change IOPL): rings 0-1 may do I/O
        pop eax
        or eax, EFL_IOPL1
        push eax
        popf
        KPRINT msg_tables
        call build_page_tables
        mov eax, PAGE_DIR
        mov cr3, eax
        mov eax, cr0
        or eax, CR0_PG | CR0_WP     ; MACH-8: paging; WP: read-only pages bind rings 0-2 as well
        mov cr0, eax
        KPRINT msg_paging

        ; A secret in the supervisor-only page, for program C to fail to read.
        mov esi, secret_text
        mov edi, SECRET_PAGE
.copy:  ldb eax, [esi]
        stb [edi], eax
        inc esi
        inc edi
        test eax, eax
        jnz .copy

        call load_files
        jmp start_tasks

; ---- paging: one directory, one table for 0..4 MiB ----
build_page_tables:
        mov edi, PAGE_DIR
        mov ecx, 2 * 1024           ; the directory and the table, zeroed
        mov eax, 0
.clear: st [edi], eax
        add edi, 4
        dec ecx
        jnz .clear
        mov eax, PAGE_TABLE | PG_P | PG_W | PG_U   ; U and W here; each PTE decides for its page
        st [PAGE_DIR], eax
        ; page 0 .. KERNEL_LOAD stays unmapped: null pointers fault
        mov eax, KERNEL_LOAD
        mov ebx, kdata_start
        mov edx, PG_P               ; kernel text: supervisor, read-only
        call map_range
        mov ebx, SUPER_END
        mov edx, PG_P | PG_W        ; kernel data, tables, stacks, file cache, SECRET_PAGE: supervisor
        call map_range
        mov eax, USER_LO
.slot:  mov ebx, eax
        add ebx, 0x1000
        mov edx, PG_P | PG_U        ; user code page: user, read-only
        call map_range
        mov ebx, eax
        add ebx, 0x1000
        mov edx, PG_P | PG_W | PG_U ; user data and stack page
        call map_range
        cmp eax, USER_HI
        jc .slot
        ret

; map_range: identity-map pages [eax, ebx) with flags edx; returns eax = ebx. Clobbers ecx.
map_range:
.next:  cmp eax, ebx
        jnc .done
        mov ecx, eax
        shr ecx, 10                 ; (page number) * 4: the PTE's offset in the table
        add ecx, PAGE_TABLE
        push eax
        or eax, edx
        st [ecx], eax
        pop eax
        add eax, 0x1000
        jmp .next
.done:  ret

        .include "kio.s"
        .include "trap.s"
        .include "disk.s"
        .include "console1.s"
        .include "files2.s"

        .text
msg_tables:     .asciz "tinyos kernel: own GDT (rings 0-3, TSS, 3 call gates), IDT, TSS loaded; IOPL 1; this line came through the ring-1 console driver\n"
msg_paging:     .asciz "tinyos kernel: paging on (CR0.PG, CR0.WP): kernel supervisor-only, text read-only, user slots U\n"
secret_text:    .asciz "kernel secret: only rings 0-2 may read this page"
        .align 8

        .data
        .align 8
; MACH-2/3: the global descriptor table. Flat code and data for each ring, the TSS, a small
; ring-2 data segment, and three call gates (MACH-7).
kgdt:
        .dword 0, 0                                 ; 0x00 null
        FLAT 0xA, 0                                 ; 0x08 ring-0 code (execute/read)
        FLAT 0x2, 0                                 ; 0x10 ring-0 data (read/write)
        FLAT 0xA, 1                                 ; 0x18 ring-1 code
        FLAT 0x2, 1                                 ; 0x20 ring-1 data
        FLAT 0xA, 2                                 ; 0x28 ring-2 code
        FLAT 0x2, 2                                 ; 0x30 ring-2 data
        FLAT 0xA, 3                                 ; 0x38 ring-3 code
        FLAT 0x2, 3                                 ; 0x40 ring-3 data
        SYSDESC tss, TSS_LIMIT, 0x9                 ; 0x48 available 32-bit TSS
        SEGMENT FILE_CACHE, 0xFFF, 0x2, 2           ; 0x50 the ring-2 file cache: base, 4 KiB, DPL 2
        GATE drv_user_write, SEL_CODE1, 2, 3        ; 0x58 ring 3 -> ring 1: console write(buf, len)
        GATE fs_user_read, SEL_CODE2, 2, 3          ; 0x60 ring 3 -> ring 2: file read(buf, max)
        GATE kputs_back, SEL_CODE0, 0, 1            ; 0x68 ring 1 -> ring 0: the driver is done
kgdt_end:
kgdtr:  .word kgdt_end - kgdt - 1
        .dword kgdt
kidtr:  .word IDT_ENTRIES * 8 - 1
        .dword idt

; The one TSS: an inner stack per ring, and the I/O permission bitmap (MACH-8, DEV-2).
        .align 8
tss:
        .dword 0                    ; 0 previous task link (no hardware task switching)
        .dword KSTACK_TOP           ; 4 ESP0
        .dword SEL_DATA0            ; 8 SS0
        .dword STACK1_TOP           ; 12 ESP1
        .dword SEL_DATA1 | 1        ; 16 SS1
        .dword STACK2_TOP           ; 20 ESP2
        .dword SEL_DATA2 | 2        ; 24 SS2
        .space TSS_IOMAP - 28
        .word TSS_SIZE              ; 102 I/O map base
; Rings above IOPL (2 and 3) may use a port only if its bit is 0. Only the RTC's ports 0x78-0x7B
; are open (IN/OUT move dwords, so all four bits must be clear); the console 0x3F8 is not.
iomap:  .space RTC_SECONDS / 8, 0xFF
        .byte 0xF0                  ; ports 0x78-0x7B open, 0x7C-0x7F closed
        .space IOMAP_BYTES - RTC_SECONDS / 8 - 1, 0xFF
        .byte 0xFF                  ; the byte after the map (the CPU reads the map two bytes at a time)

        .align 8
idt:    .space IDT_ENTRIES * 8      ; filled by build_idt

        .align 4
kernel_end:
