; The console driver: ring 1, code segment SEL_CODE1 (DPL 1), stack TSS.SS1:ESP1.
;
; It owns the console port. EFLAGS.IOPL is 1, so OUT is allowed at CPL 1 (CPL <= IOPL) and
; refused at CPL 2 and 3 unless the TSS I/O bitmap opens the port, which it does not for 0x3F8
; (reference §3.6: IN/OUT are IOPL-sensitive). Two ways in:
;   - from the kernel (ring 0): an outward RETF to drv_kernel_write (kio.s), back through the DPL-1
;     call gate GATE_DRV_DONE;
;   - from user programs (ring 3): the DPL-3 call gate GATE_CONSOLE, a CALL to a more privileged
;     ring (reference §3.3): the CPU switches to SS1:ESP1 and copies the gate's 2 parameters.

        .text
; Entered by RETF from kputs: CPL 1, SS:ESP = ring-1 stack, esi = string, ecx = length. The RETF
; loaded DS with null (its DPL 0 is below CPL 1), so the driver loads its own.
drv_kernel_write:
        mov eax, SEL_DATA1 | 1
        mov ds, eax
        call drv_out
        callf GATE_DRV_DONE:0       ; ring 1 -> ring 0 (a DPL-1 gate: ring 3 cannot use it)

; Entered through GATE_CONSOLE from ring 3. The ring-1 stack holds EIP, CS, buf, len, ESP, SS
; (parameters in the caller's order). Returns eax = len, or -1 for a buffer outside the user
; slots, and RETF 8 drops the parameters from both stacks on the way back to ring 3 (§3.4).
drv_user_write:
        push ds
        push esi
        push ecx
        ld esi, [esp + 20]          ; buf (3 pushes + EIP + CS = 20 bytes above it)
        ld ecx, [esp + 24]          ; len
        mov eax, SEL_DATA1 | 1      ; the driver's own data segment: a user cannot make it read
        mov ds, eax                 ; through a null or odd DS of its choosing
        USER_RANGE esi, ecx, WRITE_MAX, .bad
        call drv_out
        ld eax, [esp + 24]
        jmp .out
.bad:   mov eax, -1
.out:   pop ecx
        pop esi
        pop ds                      ; the caller's DS (DPL 3) is valid at CPL 1 and after RETF
        retf 8

; drv_out: write ecx bytes at ds:esi to the console port. Clobbers eax, ecx, esi.
drv_out:
        test ecx, ecx
        jz .done
.next:  ldb eax, [esi]
        out CON_DATA, eax           ; CPL 1 <= IOPL 1: allowed
        inc esi
        dec ecx
        jnz .next
.done:  ret
