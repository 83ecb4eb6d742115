; Program C (ring 3, user slot 2): reads README.TXT through the call gate into the ring-2 file
; service and prints it; yields; then reads the supervisor-only SECRET_PAGE, which the MMU refuses
; to CPL 3 (#PF, error 5: protection, read, user). The kernel kills C.
        .include "layout.inc"
        .org USER_LO + 2 * TASK_SIZE
start:  jmp main
        .include "ulib.inc"
BUF     equ start + 0x1000          ; FILE_CACHE_MAX bytes; the stack is above them

main:   mov esi, hello
        call u_puts80
        push FILE_CACHE_MAX         ; parameter 1: max
        push BUF                    ; parameter 0: buffer
        callf GATE_FILE | 3 : 0     ; ring 3 -> ring 2 (MACH-7)
        cmp eax, -1
        jz .failed
        mov esi, BUF
        mov edx, eax
.chunk: test edx, edx               ; INT 0x80 writes at most WRITE_MAX bytes a call
        jz .printed
        mov ecx, edx
        cmp ecx, WRITE_MAX
        jbe .write
        mov ecx, WRITE_MAX
.write: call u_write80
        add esi, ecx
        sub edx, ecx
        jmp .chunk
.printed:
        call u_yield
        mov esi, touch
        call u_puts80
        ld eax, [SECRET_PAGE]       ; #PF: the PTE has U = 0
        mov esi, leaked
        call u_puts80
        mov ebx, 1
        jmp u_exit
.failed:
        mov esi, failed
        call u_puts80
        mov ebx, 2
        jmp u_exit

hello:  .asciz "C: ring 3, reading README.TXT through call gate 0x60 (DPL 3, into the ring-2 file service):\n"
touch:  .asciz "C: now reading the supervisor-only page 0x00026000 from ring 3\n"
leaked: .asciz "C: read it: the U bit did not protect the page!\n"
failed: .asciz "C: the file service refused\n"
