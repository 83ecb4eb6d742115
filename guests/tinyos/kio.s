; Kernel console output. Ring 0 could write the port itself, but tinyos gives the console to the
; ring-1 driver, so the kernel calls it too. x86 has no call to an OUTER ring (a call gate only
; leads inward: reference §3.3), so the kernel enters ring 1 the only way there is, a far RETURN
; (§3.4), and the driver comes back through a call gate of DPL 1 into ring 0, whose inward stack
; switch takes SS0:ESP0 from the TSS. kputs points TSS.ESP0 just below its own saved state for
; the duration, so the gate's frame lands below it; interrupts are off meanwhile.

        .text
; kputs: print ecx bytes at esi. Preserves every register and EFLAGS.IF.
kputs:
        pushf
        cli
        push eax
        push ecx
        push edx
        push ebx
        push ebp
        push esi
        push edi
        push ds
        push es
        ld eax, [tss + TSS_ESP0]
        push eax
        st [kputs_sp], esp
        st [tss + TSS_ESP0], esp
        push SEL_DATA1 | 1          ; SS of ring 1 (RPL = DPL = the new CPL)
        push STACK1_TOP             ; ESP of ring 1
        push SEL_CODE1 | 1          ; CS: RPL 1 > CPL 0 makes this an inter-privilege return
        push drv_kernel_write
        retf                        ; CPL 0 -> 1; DS/ES (DPL 0) become null (SDM RET)
kputs_back:                         ; ring 1 -> 0 through GATE_DRV_DONE; SS:ESP = TSS.SS0:ESP0 - 16
        mov eax, SEL_DATA0
        mov ds, eax
        ld esp, [kputs_sp]          ; drop the gate's frame (SS1, ESP1, CS1, EIP)
        pop eax
        st [tss + TSS_ESP0], eax
        pop es
        pop ds
        pop edi
        pop esi
        pop ebp
        pop ebx
        pop edx
        pop ecx
        pop eax
        popf                        ; ring 0: POPF restores IF
        ret

; kputz: print the NUL-terminated string at esi. Preserves registers.
kputz:
        push eax
        push ecx
        push esi
        mov ecx, 0
.len:   ldb eax, [esi]
        test eax, eax
        jz .print
        inc ecx
        inc esi
        jmp .len
.print: pop esi
        call kputs
        pop ecx
        pop eax
        ret

; kputhex: print eax as 0x followed by 8 hex digits. Preserves registers.
kputhex:
        push eax
        push ebx
        push ecx
        push edx
        push esi
        push edi
        mov edx, eax
        mov edi, hexbuf + 9
        mov ecx, 8
.digit: mov ebx, edx
        and ebx, 15
        ldb ebx, [ebx + hexdigits]
        stb [edi], ebx
        dec edi
        shr edx, 4
        dec ecx
        jnz .digit
        mov esi, hexbuf
        mov ecx, 10
        call kputs
        pop edi
        pop esi
        pop edx
        pop ecx
        pop ebx
        pop eax
        ret

; kputdec: print eax in decimal. Preserves registers.
kputdec:
        push eax
        push ecx
        push edx
        push esi
        mov esi, decbuf + 10        ; digits are written backwards from the end
        mov ecx, 0
.digit: mov edx, eax
        remu edx, 10
        add edx, '0'
        dec esi
        stb [esi], edx
        inc ecx
        divu eax, 10
        test eax, eax
        jnz .digit
        call kputs
        pop esi
        pop edx
        pop ecx
        pop eax
        ret

; kputc: print the character in eax. Preserves registers.
kputc:
        push eax
        push ecx
        push esi
        stb [charbuf], eax
        mov esi, charbuf
        mov ecx, 1
        call kputs
        pop esi
        pop ecx
        pop eax
        ret

hexdigits:      .ascii "0123456789ABCDEF"
        .align 8                    ; code after data stays 8-byte aligned

        .data
kputs_sp:       .dword 0
hexbuf:         .ascii "0x00000000"
decbuf:         .space 10
charbuf:        .dword 0
        .text
