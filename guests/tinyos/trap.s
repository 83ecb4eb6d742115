; Interrupts, exceptions, system calls and the scheduler (ring 0).
;
; Every vector enters through a stub that makes the stack look the same: an error code (the CPU's,
; or a 0 the stub pushes), the vector, then trap_common pushes the general registers, DS and ES.
; From ring 3 the CPU has switched to TSS.SS0:ESP0 = KSTACK_TOP first (reference §3.5), so a user
; task's frame is always the FRAME_SIZE bytes below KSTACK_TOP, and switching tasks is copying
; frames between that place and the task control blocks (TCBs), then IRET.
;
; Rings 0-2 are never preempted: each has one stack, shared by all tasks, so the timer switches
; tasks only when it interrupted ring 3. A tick that lands in rings 0-2 sets `resched`, and the
; next system call switches on its way out.

F_ES    equ 0
F_DS    equ 4
F_EDI   equ 8
F_ESI   equ 12
F_EBP   equ 16
F_EBX   equ 20
F_EDX   equ 24
F_ECX   equ 28
F_EAX   equ 32
F_VEC   equ 36
F_ERR   equ 40
F_EIP   equ 44                      ; pushed by the CPU from here on
F_CS    equ 48
F_EFL   equ 52
F_ESP   equ 56                      ; only when the trap came from an outer ring
F_SS    equ 60
FRAME_SIZE equ 64
FRAME   equ KSTACK_TOP - FRAME_SIZE

TCB_STATE equ 0                     ; 1 runnable, 0 exited or killed
TCB_NAME  equ 4                     ; the program's letter
TCB_FRAME equ 8                     ; a saved frame, FRAME_SIZE bytes
TCB_SIZE  equ 128

; Stubs: three instructions each, so stub n is at isr_0 + n * STUB_SIZE.
.macro STUB_NOERR vec
isr_\vec:
        push 0
        push \vec
        jmp trap_common
.endm
.macro STUB_ERR vec                 ; the CPU pushed an error code (SDM Table 6-1)
isr_\vec:
        nop
        push \vec
        jmp trap_common
.endm

        .text
        STUB_NOERR 0
        STUB_NOERR 1
        STUB_NOERR 2
        STUB_NOERR 3
        STUB_NOERR 4
        STUB_NOERR 5
        STUB_NOERR 6
        STUB_NOERR 7
        STUB_ERR 8
        STUB_NOERR 9
        STUB_ERR 10
        STUB_ERR 11
        STUB_ERR 12
        STUB_ERR 13
        STUB_ERR 14
        STUB_NOERR 15
        STUB_NOERR 16
        STUB_ERR 17
        STUB_NOERR 18
        STUB_NOERR 19
        STUB_NOERR 20
        STUB_NOERR 21
        STUB_NOERR 22
        STUB_NOERR 23
        STUB_NOERR 24
        STUB_NOERR 25
        STUB_NOERR 26
        STUB_NOERR 27
        STUB_NOERR 28
        STUB_NOERR 29
        STUB_NOERR 30
        STUB_NOERR 31
        STUB_NOERR 32               ; timer
        STUB_NOERR 34               ; disk
        STUB_NOERR 128              ; system call
STUB_SIZE equ isr_1 - isr_0

; build_idt: exceptions 0-31 and the two device lines as interrupt gates (IF cleared, DPL 0: a
; user's INT 13 is a #GP, not a fake fault), INT 0x80 as a DPL-3 trap gate (IF kept: the kernel
; can take the timer while it serves a call).
build_idt:
        mov edi, idt
        mov ebx, isr_0
        mov ecx, 32
        mov eax, INT_GATE_HI
.exc:   st [edi], ebx
        st [edi + 4], eax
        add edi, 8
        add ebx, STUB_SIZE
        dec ecx
        jnz .exc
        mov ebx, isr_32
        st [idt + VEC_TIMER * 8], ebx
        st [idt + VEC_TIMER * 8 + 4], eax
        mov ebx, isr_34
        st [idt + VEC_DISK * 8], ebx
        st [idt + VEC_DISK * 8 + 4], eax
        mov ebx, isr_128
        st [idt + VEC_SYSCALL * 8], ebx
        mov eax, TRAP_GATE_HI3
        st [idt + VEC_SYSCALL * 8 + 4], eax
        ret

trap_common:
        push eax
        push ecx
        push edx
        push ebx
        push ebp
        push esi
        push edi
        push ds
        push es
        mov eax, SEL_DATA0
        mov ds, eax
        mov es, eax
        mov ebp, esp
        ld eax, [ebp + F_VEC]
        cmp eax, VEC_TIMER
        jz on_timer
        cmp eax, VEC_DISK
        jz on_disk
        cmp eax, VEC_SYSCALL
        jz on_syscall
        jmp on_exception
trap_return:
        pop es                      ; a user's DS/ES (DPL 3) are loadable here and survive the IRET
        pop ds
        pop edi
        pop esi
        pop ebp
        pop ebx
        pop edx
        pop ecx
        pop eax
        add esp, 8                  ; vector and error code
        iret

on_timer:
        mov eax, 0
        out PIC_EOI, eax
        ld eax, [ticks]
        inc eax
        st [ticks], eax
        ld eax, [ebp + F_CS]
        and eax, 3
        cmp eax, 3
        jz schedule                 ; interrupted ring 3: round robin
        mov eax, 1                  ; interrupted ring 0, 1 or 2: back where it was, and switch
        st [resched], eax           ; at the next return to ring 3 from a system call
        jmp trap_return

on_disk:
        in eax, DISK_STATUS
        st [disk_status], eax
        mov eax, 1
        st [disk_done], eax
        mov eax, 0
        out PIC_EOI, eax
        jmp trap_return

; INT 0x80: eax = call number, ebx/ecx arguments, result in eax. The gate's DPL 3 lets any ring
; use it; only ring 3 is served (a frame from rings 0-2 is not at FRAME and is not a task's).
on_syscall:
        ld eax, [ebp + F_CS]
        and eax, 3
        cmp eax, 3
        jnz .refuse
        ld eax, [ebp + F_EAX]
        cmp eax, SYS_WRITE
        jz sys_write
        cmp eax, SYS_EXIT
        jz sys_exit
        cmp eax, SYS_YIELD
        jz schedule
.refuse:
        mov eax, -1
        st [ebp + F_EAX], eax
        jmp trap_return

sys_write:
        ld esi, [ebp + F_EBX]
        ld ecx, [ebp + F_ECX]
        USER_RANGE esi, ecx, WRITE_MAX, .bad
        call kputs
        st [ebp + F_EAX], ecx
        jmp syscall_return
.bad:   mov eax, -1
        st [ebp + F_EAX], eax
; syscall_return: back to the calling task, unless a timer tick came while the kernel ran.
syscall_return:
        ld eax, [resched]
        test eax, eax
        jz trap_return
        mov eax, 0
        st [resched], eax
        jmp schedule

sys_exit:
        ld ebx, [cur_task]
        mov eax, 0
        st [ebx + TCB_STATE], eax
        KPRINT msg_task
        ld eax, [ebx + TCB_NAME]
        call kputc
        KPRINT msg_exited
        ld eax, [ebp + F_EBX]
        call kputdec
        KPRINT msg_nl
        jmp schedule_next

; Exceptions. From ring 3 the task is at fault: report and kill it (MACH-6: the violation is
; the kernel's to handle). From rings 0-2 it is a kernel bug: report and halt.
on_exception:
        mov eax, cr2
        st [fault_cr2], eax
        ld eax, [ebp + F_CS]
        and eax, 3
        cmp eax, 3
        jnz panic
        ld ebx, [cur_task]
        mov eax, 0
        st [ebx + TCB_STATE], eax
        KPRINT msg_task
        ld eax, [ebx + TCB_NAME]
        call kputc
        KPRINT msg_colon
        call print_fault
        KPRINT msg_killed
        jmp schedule_next

panic:
        KPRINT msg_panic
        call print_fault
        KPRINT msg_halt
        cli
        hlt

; print_fault: "#PF (vector 14), error 0x00000005, at 0x0000003B:0x00044268, cr2 0x00026000".
print_fault:
        ld eax, [ebp + F_VEC]
        cmp eax, 15
        jc .named
        mov eax, 15                 ; "#??"
.named: shl eax, 2
        add eax, vec_names
        push esi
        push ecx
        mov esi, eax
        mov ecx, 3
        call kputs
        pop ecx
        pop esi
        KPRINT msg_vector
        ld eax, [ebp + F_VEC]
        call kputdec
        KPRINT msg_error
        ld eax, [ebp + F_ERR]
        call kputhex
        KPRINT msg_at
        ld eax, [ebp + F_CS]
        call kputhex
        mov eax, ':'
        call kputc
        ld eax, [ebp + F_EIP]
        call kputhex
        ld eax, [ebp + F_VEC]
        cmp eax, 14
        jnz .done
        KPRINT msg_cr2
        ld eax, [fault_cr2]
        call kputhex
.done:  ret

; schedule: save the running task's frame, then run the next runnable task.
schedule:
        ld edi, [cur_task]
        add edi, TCB_FRAME
        mov esi, ebp
        call copy_frame
; schedule_next: the current task is saved or dead; find the next runnable one after it.
schedule_next:
        ld ebx, [cur_task]
        ld ecx, [ntasks]
.find:  add ebx, TCB_SIZE
        ld eax, [tcb_limit]
        cmp ebx, eax
        jc .inside
        mov ebx, tcbs
.inside:
        ld eax, [ebx + TCB_STATE]
        cmp eax, 1
        jz .found
        dec ecx
        jnz .find
        jmp all_done
.found: st [cur_task], ebx
        mov eax, 0
        st [resched], eax           ; a fresh slice
        lea esi, [ebx + TCB_FRAME]
        mov edi, ebp
        call copy_frame
        jmp trap_return             ; IRET into ring 3 with the task's registers

; copy_frame: FRAME_SIZE bytes from esi to edi. Clobbers eax, ecx, esi, edi.
copy_frame:
        mov ecx, FRAME_SIZE / 4
.next:  ld eax, [esi]
        st [edi], eax
        add esi, 4
        add edi, 4
        dec ecx
        jnz .next
        ret

; start_tasks: program the timer and enter the first task as if returning from a trap.
start_tasks:
        ld eax, [ntasks]
        test eax, eax
        jz all_done
        mul eax, TCB_SIZE
        add eax, tcbs
        st [tcb_limit], eax
        sub eax, TCB_SIZE
        st [cur_task], eax          ; "current" = the last, so the first runs first
        KPRINT msg_start
        ld eax, [ntasks]
        call kputdec
        KPRINT msg_start2
        mov eax, TIMER_PERIOD
        call kputdec
        KPRINT msg_start3
        mov eax, TIMER_PERIOD
        out TIMER_RELOAD, eax
        mov eax, TIMER_ON
        out TIMER_CONTROL, eax
        mov eax, 0xFFFF & ~((1 << 0) | (1 << 2))
        out PIC_MASK, eax           ; open PIC lines 0 (timer) and 2 (disk)
        mov ebp, FRAME
        mov esp, ebp
        jmp schedule_next

all_done:
        mov eax, 0
        out TIMER_CONTROL, eax
        KPRINT msg_done
        ld eax, [ticks]
        call kputdec
        KPRINT msg_done2
        cli
        hlt                         ; IF = 0: nothing can wake the CPU

vec_names:      .ascii "#DE\0#DB\0NMI\0#BP\0#OF\0#BR\0#UD\0#NM\0#DF\0#09\0#TS\0#NP\0#SS\0#GP\0#PF\0#??\0"
msg_task:       .asciz "tinyos kernel: task "
msg_exited:     .asciz " exited with code "
msg_colon:      .asciz ": "
msg_killed:     .asciz "; killed\n"
msg_panic:      .asciz "tinyos kernel PANIC: "
msg_halt:       .asciz "; halted\n"
msg_vector:     .asciz " (vector "
msg_error:      .asciz "), error "
msg_at:         .asciz ", at "
msg_cr2:        .asciz ", cr2 "
msg_nl:         .asciz "\n"
msg_start:      .asciz "tinyos kernel: starting "
msg_start2:     .asciz " tasks in ring 3, round robin, timer every "
msg_start3:     .asciz " instructions\n"
msg_done:       .asciz "tinyos kernel: all tasks finished after "
msg_done2:      .asciz " timer ticks; halting with interrupts off\n"
        .align 8

        .data
cur_task:       .dword 0
ntasks:         .dword 0
tcb_limit:      .dword 0
ticks:          .dword 0
resched:        .dword 0            ; a tick arrived outside ring 3: switch at the next chance
fault_cr2:      .dword 0
        .align 8
tcbs:           .space MAX_TASKS * TCB_SIZE
        .text
