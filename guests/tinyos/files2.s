; The file service: ring 2, code segment SEL_CODE2 (DPL 2), stack TSS.SS2:ESP2.
;
; The file's bytes live in the segment SEL_FILE2: base FILE_CACHE, limit 0xFFF, DPL 2, holding
; {length dword, bytes}. MACH-6/TB-3 rule 1: a data segment of DPL 2 can be loaded at CPL 0-2 and
; not at CPL 3 (#GP: program E shows it), so ring 3 reaches the file only through the DPL-3 call
; gate GATE_FILE into this code (MACH-7). The page under it is supervisor-only as well.

        .text
; Entered through GATE_FILE from ring 3 with 2 parameters: buf, max. Copies min(max, length)
; bytes of the file to buf; returns the count in eax, or -1 for a buffer outside the user slots.
fs_user_read:
        push ds
        push fs
        push esi
        push edi
        push ecx
        push ebx
        ld edi, [esp + 32]          ; buf (6 pushes + EIP + CS = 32 bytes above it)
        ld ecx, [esp + 36]          ; max
        mov eax, SEL_DATA2 | 2
        mov ds, eax
        mov eax, SEL_FILE2 | 2
        mov fs, eax                 ; DPL 2 >= max(CPL 2, RPL 2): allowed here
        USER_RANGE edi, ecx, FILE_CACHE_MAX, .bad
        ld eax, [fs:0]              ; the file's length
        cmp ecx, eax
        jbe .count
        mov ecx, eax
.count: mov ebx, ecx
        mov esi, 4
.copy:  test ecx, ecx
        jz .copied
        ldb eax, [fs:esi]           ; segment-relative: the limit check keeps this inside the file
        stb [edi], eax
        inc esi
        inc edi
        dec ecx
        jmp .copy
.copied:
        mov eax, ebx
        jmp .out
.bad:   mov eax, -1
.out:   pop ebx
        pop ecx
        pop edi
        pop esi
        pop fs
        pop ds
        retf 8
