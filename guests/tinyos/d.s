; Program D (ring 3, user slot 3): reads the RTC directly with IN (CPL 3 > IOPL 1, so the CPU
; consults the TSS I/O bitmap, which opens ports 0x78-0x7B); then writes the console port directly,
; which the bitmap keeps closed: #GP(0), and the kernel kills D (DEV-2: per-port lock-out).
        .include "layout.inc"
        .org USER_LO + 3 * TASK_SIZE
start:  jmp main
        .include "ulib.inc"
LINE    equ start + 0x1000

main:   mov esi, hello
        call u_puts80
        in eax, RTC_SECONDS
        mov edi, LINE
        call u_hex
        mov esi, LINE
        mov ecx, 10
        call u_write80
        mov esi, rtc_done
        call u_puts80
        mov esi, touch
        call u_puts80
        mov eax, '!'
        out CON_DATA, eax           ; #GP(0)
        mov esi, leaked
        call u_puts80
        mov ebx, 1
        jmp u_exit

hello:    .asciz "D: ring 3, RTC seconds "
rtc_done: .asciz " read with IN from port 0x78 (open in the TSS I/O bitmap)\n"
touch:    .asciz "D: now writing the console port 0x3F8 with OUT from ring 3\n"
leaked:   .asciz "D: wrote it: the I/O bitmap did not protect the port!\n"
