; Program A (ring 3, user slot 0): lines A0..A5 through INT 0x80, each followed by a busy loop
; longer than a time slice, so the timer takes the CPU away mid-loop; then exit(0).
        .include "layout.inc"
        .org USER_LO + 0 * TASK_SIZE
start:  jmp main
        .include "ulib.inc"
LINE    equ start + 0x1000          ; the data page (U, W); the code page is read-only
SPIN    equ 1400

main:   mov esi, hello
        call u_puts80
        mov edi, 0
.loop:  mov eax, 'A'
        stb [LINE], eax
        mov eax, '0'
        add eax, edi
        stb [LINE + 1], eax
        mov eax, 10
        stb [LINE + 2], eax
        mov esi, LINE
        mov ecx, 3
        call u_write80
        mov ecx, SPIN
.spin:  dec ecx
        jnz .spin
        inc edi
        cmp edi, 6
        jnz .loop
        mov ebx, 0
        jmp u_exit

hello:  .asciz "A: ring 3, writing through INT 0x80 (trap gate, DPL 3, into ring 0)\n"
