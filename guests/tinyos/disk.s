; The disk and the file table (ring 0). The ROM polled the controller; the kernel uses its
; completion interrupt (PIC line 2 -> vector 0x22) and HLTs until it arrives.
;
; File table (sector FTAB_LBA, written by guests/build.ts): "TFS1", a count, then entries of
; {name[16], lba, bytes, load}. An entry with a load address is a user program: it is read into
; its user slot and becomes a task. README.TXT goes into the ring-2 file service's segment.

        .text
; disk_read: ecx sectors from LBA eax to physical address edx (DMA bypasses paging: the
; destination is physical, and this kernel maps memory 1:1). Preserves registers.
disk_read:
        push eax
        out DISK_LBA, eax
        out DISK_COUNT, ecx
        out DISK_ADDR, edx
        mov eax, 1
        out DISK_CONTROL, eax       ; interrupt on completion
        mov eax, 0
        st [disk_done], eax
        mov eax, DISK_READ
        out DISK_COMMAND, eax
.wait:  ld eax, [disk_done]
        test eax, eax
        jnz .done
        sti                         ; STI holds interrupts off for one more instruction, so the
        hlt                         ; completion cannot slip in between: HLT always wakes
        cli
        jmp .wait
.done:  ld eax, [disk_status]
        shr eax, 8
        test eax, eax
        jnz .error
        pop eax
        ret
.error: KPRINT msg_disk_error
        cli
        hlt

; load_files: read the file table, load README.TXT and every program.
load_files:
        mov eax, 0xFFFF & ~(1 << 2)
        out PIC_MASK, eax           ; PIC line 2 (disk) only, for now
        mov eax, FTAB_LBA
        mov ecx, 1
        mov edx, DISK_BUF
        call disk_read
        ld eax, [DISK_BUF + FT_MAGIC]
        cmp eax, FTAB_MAGIC
        jnz .bad_table
        ld ecx, [DISK_BUF + FT_COUNT]
        cmp ecx, FTAB_MAX
        ja .bad_table
        KPRINT msg_ftab
        KDEC FTAB_LBA
        KPRINT msg_ftab1
        KDEC ecx
        KPRINT msg_ftab2
        mov ebx, DISK_BUF + FT_ENTRIES
.entry: test ecx, ecx
        jz .done
        push ecx
        call load_entry
        pop ecx
        add ebx, FTE_SIZE
        dec ecx
        jmp .entry
.done:  ret
.bad_table:
        KPRINT msg_bad_table
        cli
        hlt

; load_entry: the file table entry at ebx. Clobbers eax, ecx, edx, esi, edi.
load_entry:
        KPRINT msg_file
        lea esi, [ebx + FTE_NAME]
        call kputz
        KPRINT msg_file_bytes
        ld eax, [ebx + FTE_BYTES]
        call kputdec
        KPRINT msg_file_lba
        ld eax, [ebx + FTE_LBA]
        call kputdec
        ld ecx, [ebx + FTE_BYTES]   ; sectors = ceil(bytes / 512)
        add ecx, 511
        shr ecx, 9
        ld eax, [ebx + FTE_LOAD]
        test eax, eax
        jnz .program
        lea esi, [ebx + FTE_NAME]
        mov edi, name_readme
        call streq
        jnz .skip
        ld eax, [ebx + FTE_BYTES]
        cmp eax, FILE_CACHE_MAX
        ja .skip
        st [FILE_CACHE], eax        ; the segment holds {length, bytes}
        ld eax, [ebx + FTE_LBA]
        mov edx, FILE_CACHE + 4
        call disk_read
        KPRINT msg_to_ring2
        ret
.skip:  KPRINT msg_skipped
        ret
.program:
        ; A program: load address must be the start of a user slot, the image must fit its code page.
        cmp eax, USER_LO
        jc .skip
        cmp eax, USER_HI
        jnc .skip
        test eax, TASK_SIZE - 1
        jnz .skip
        ld edx, [ebx + FTE_BYTES]
        cmp edx, 0x1000
        ja .skip
        ld edx, [ntasks]
        cmp edx, MAX_TASKS
        jnc .skip
        mov edx, eax                ; DMA into the user code page (read-only to the user, not to DMA)
        ld eax, [ebx + FTE_LBA]
        call disk_read
        ; A TCB whose frame IRETs to the program's first byte in ring 3 with its own stack.
        ld edi, [ntasks]
        mul edi, TCB_SIZE
        add edi, tcbs
        mov eax, 1
        st [edi + TCB_STATE], eax
        ldb eax, [ebx + FTE_NAME]
        st [edi + TCB_NAME], eax
        mov eax, SEL_DATA3 | 3
        st [edi + TCB_FRAME + F_ES], eax
        st [edi + TCB_FRAME + F_DS], eax
        st [edi + TCB_FRAME + F_SS], eax
        mov eax, SEL_CODE3 | 3
        st [edi + TCB_FRAME + F_CS], eax
        mov eax, USER_EFLAGS
        st [edi + TCB_FRAME + F_EFL], eax
        st [edi + TCB_FRAME + F_EIP], edx
        add edx, TASK_SIZE
        st [edi + TCB_FRAME + F_ESP], edx
        ld eax, [ntasks]
        inc eax
        st [ntasks], eax
        KPRINT msg_to_slot
        sub edx, TASK_SIZE
        KHEX edx
        KPRINT msg_nl
        ret

; streq: ZF = 1 when the NUL-terminated strings at esi and edi are equal. Clobbers eax, edx, esi, edi.
streq:
        ldb eax, [esi]
        ldb edx, [edi]
        cmp eax, edx
        jnz .out
        test eax, eax
        jz .out
        inc esi
        inc edi
        jmp streq
.out:   ret

name_readme:    .asciz "README.TXT"
msg_ftab:       .asciz "tinyos kernel: file table at LBA "
msg_ftab1:      .asciz " (read by disk interrupt, HLT until done): "
msg_ftab2:      .asciz " files\n"
msg_file:       .asciz "tinyos kernel:   "
msg_file_bytes: .asciz ", "
msg_file_lba:   .asciz " bytes at LBA "
msg_to_ring2:   .asciz " -> ring-2 file segment\n"
msg_to_slot:    .asciz " -> ring-3 task at "
msg_skipped:    .asciz " (skipped)\n"
msg_bad_table:  .asciz "tinyos kernel: no file table; halted\n"
msg_disk_error: .asciz "tinyos kernel: disk error; halted\n"
        .align 8

        .data
disk_done:      .dword 0
disk_status:    .dword 0
        .text
