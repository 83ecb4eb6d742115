; transformer: an active-network module for nodeos (docs/nodeos.md) that rewrites what flows
; through the node. In every IPv4 frame (type 0x0800) the ASCII letters a-z after a 20-byte IPv4
; header (frame bytes 34 to the end) become A-Z; the frame is forwarded, as is every other frame
; unchanged (FORWARD: back to the hop it came from, with the node's address as source). When the queue runs dry and a frame was
; rewritten since the last time, it prints "transformer: <n> frames rewritten" once, n counting
; every frame in which at least one byte changed.

        .include "abi.inc"

start:
        RING_DIGIT msg_ring
        WRITE msg_running, msg_running_end - msg_running
; The loop: take what is queued without waiting; when nothing is, say the count if it changed,
; then wait.
next:
        RECV buf, FRAME_MAX, RECV_NOWAIT
        test eax, eax
        jnz .frame
        ld eax, [dirty]
        test eax, eax
        jz .wait
        call say_count
        mov eax, 0
        st [dirty], eax
.wait:  RECV buf, FRAME_MAX, 0
.frame: cmp eax, SYSCALL_ERROR          ; longer than the buffer: the node dropped it
        jz next
        mov ecx, eax
        call transform
        FORWARD buf, ecx
        jmp next

; transform: uppercases the IPv4 payload of the frame in buf, ecx bytes. Preserves ecx.
transform:
        cmp ecx, IPV4_PAYLOAD
        jbe .done
        ldb eax, [buf + ETH_TYPE]
        cmp eax, ETHERTYPE_IPV4 >> 8
        jnz .done
        ldb eax, [buf + ETH_TYPE + 1]
        cmp eax, ETHERTYPE_IPV4 & 0xFF
        jnz .done
        mov esi, buf + IPV4_PAYLOAD
        mov edi, buf
        add edi, ecx                    ; the frame's end
        mov edx, 0                      ; changed?
.byte:  cmp esi, edi
        jnc .counted
        ldb eax, [esi]
        cmp eax, 'a'
        jc .skip
        cmp eax, 'z'
        ja .skip
        sub eax, 'a' - 'A'
        stb [esi], eax
        mov edx, 1
.skip:  inc esi
        jmp .byte
.counted:
        test edx, edx
        jz .done
        ld eax, [rewritten]
        inc eax
        st [rewritten], eax
        mov eax, 1
        st [dirty], eax
.done:  ret

; say_count: "transformer: <rewritten> frames rewritten\n", built in line. Clobbers eax-edi.
say_count:
        mov edi, line
        mov esi, msg_count
.prefix:
        ldb eax, [esi]                  ; the prefix, up to its NUL
        test eax, eax
        jz .number
        stb [edi], eax
        inc esi
        inc edi
        jmp .prefix
.number:
        ld eax, [rewritten]
        mov ecx, 0                      ; digits, pushed lowest first
.digit: mov edx, eax
        remu edx, 10
        add edx, '0'
        push edx
        inc ecx
        divu eax, 10
        test eax, eax
        jnz .digit
.pop:   pop eax
        stb [edi], eax
        inc edi
        dec ecx
        jnz .pop
        mov esi, msg_frames
.suffix:
        ldb eax, [esi]
        test eax, eax
        jz .write
        stb [edi], eax
        inc esi
        inc edi
        jmp .suffix
.write: sub edi, line
        mov edx, edi
        WRITE line, edx
        ret

msg_running:    .ascii "transformer: running in ring "
msg_ring:       .ascii "?\n"
msg_running_end:
msg_count:      .asciz "transformer: "
msg_frames:     .asciz " frames rewritten\n"
        .align 8

; Variables and buffers past the image: the node zeroes the segment before loading.
image_end:
dirty           equ image_end           ; a frame was rewritten since the last count line
rewritten       equ image_end + 4
line            equ image_end + 16      ; the count line (64 bytes)
buf             equ image_end + 80
