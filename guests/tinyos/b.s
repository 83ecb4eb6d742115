; Program B (ring 3, user slot 1): lines B0..B5 through the call gate into the ring-1 console
; driver, each followed by a busy loop, so the timer interleaves it with A; then exit(0).
        .include "layout.inc"
        .org USER_LO + 1 * TASK_SIZE
start:  jmp main
        .include "ulib.inc"
LINE    equ start + 0x1000
SPIN    equ 1400

main:   mov esi, hello
        call u_strlen
        call u_write_gate
        mov edi, 0
.loop:  mov eax, 'B'
        stb [LINE], eax
        mov eax, '0'
        add eax, edi
        stb [LINE + 1], eax
        mov eax, 10
        stb [LINE + 2], eax
        mov esi, LINE
        mov ecx, 3
        call u_write_gate
        mov ecx, SPIN
.spin:  dec ecx
        jnz .spin
        inc edi
        cmp edi, 6
        jnz .loop
        mov ebx, 0
        jmp u_exit

hello:  .asciz "B: ring 3, writing through call gate 0x58 (DPL 3, into the ring-1 driver)\n"
