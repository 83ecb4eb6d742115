; Program E (ring 3, user slot 4): loads the ring-2 file segment's selector into DS. A data
; segment of DPL 2 needs DPL >= max(CPL, RPL) = 3 (reference §3.1; MACH-6): #GP(0x50), and the
; kernel kills E. Only the call gate into ring 2 (program C) reaches that segment.
        .include "layout.inc"
        .org USER_LO + 4 * TASK_SIZE
start:  jmp main
        .include "ulib.inc"

main:   mov esi, hello
        call u_puts80
        mov eax, SEL_FILE2 | 3
        mov ds, eax                 ; #GP(0x50)
        mov esi, leaked
        call u_puts80
        mov ebx, 1
        jmp u_exit

hello:  .asciz "E: ring 3, now loading the ring-2 file segment (selector 0x0053) into DS\n"
leaked: .asciz "E: loaded it: the DPL check did not protect the segment!\n"
