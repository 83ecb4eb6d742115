; billing: an active-network module for nodeos (docs/nodeos.md). Every data frame the node
; receives is counted, in total and per flow, and forwarded unchanged but for its addresses
; (FORWARD: back to the hop it came from, the router, with the node's address as source). Whenever the queue runs dry and something was
; counted since the last report, the module reports the cumulative totals to the node's agent.
;
; Flows: an IPv4 frame (type 0x0800, at least 34 bytes) belongs to the flow of its IPv4 source and
; destination addresses; every other frame, and IPv4 flows past the first MAX_FLOWS, to the flow
; "other" (type 0, addresses 0). Flows are kept in the order they first appeared.
;
; Report (big-endian): "BILL" version[1] = 1, flow count[1], total packets[4], total bytes[4],
; then per flow: type[2] (0x0800 or 0), source[4], destination[4], packets[4], bytes[4].

        .include "abi.inc"

MAX_FLOWS       equ 16                  ; IPv4 address pairs; "other" has a slot of its own
FLOW_TYPE       equ 0                   ; a flow in memory: dwords, addresses as they are in frames
FLOW_SRC        equ 4
FLOW_DST        equ 8
FLOW_PACKETS    equ 12
FLOW_BYTES      equ 16
FLOW_SIZE       equ 20
REPORT_HEADER   equ 14
REPORT_FLOW     equ 18
BILL_MAGIC      equ 0x4C4C4942          ; "BILL" as a little-endian dword

start:
        RING_DIGIT msg_ring
        WRITE msg_running, msg_running_end - msg_running
; The loop: take what is queued without waiting; when nothing is, report if needed, then wait.
next:
        RECV buf, FRAME_MAX, RECV_NOWAIT
        test eax, eax
        jnz .frame
        ld eax, [dirty]
        test eax, eax
        jz .wait
        call report
        mov eax, 0
        st [dirty], eax
.wait:  RECV buf, FRAME_MAX, 0
.frame: cmp eax, SYSCALL_ERROR          ; longer than the buffer: the node dropped it
        jz next
        mov ecx, eax
        call account
        FORWARD buf, ecx
        mov eax, 1
        st [dirty], eax
        jmp next

; account: counts the frame in buf, ecx bytes, in the totals and in its flow. Preserves ecx.
account:
        ld eax, [total_packets]
        inc eax
        st [total_packets], eax
        ld eax, [total_bytes]
        add eax, ecx
        st [total_bytes], eax
        mov edx, 0                      ; the key (edx, esi, edi): "other" unless IPv4
        mov esi, 0
        mov edi, 0
        cmp ecx, IPV4_PAYLOAD
        jc .find
        ldb eax, [buf + ETH_TYPE]
        cmp eax, ETHERTYPE_IPV4 >> 8
        jnz .find
        ldb eax, [buf + ETH_TYPE + 1]
        cmp eax, ETHERTYPE_IPV4 & 0xFF
        jnz .find
        mov edx, ETHERTYPE_IPV4
        ld esi, [buf + IPV4_SRC]
        ld edi, [buf + IPV4_DST]
.find:  call find_flow
        test ebx, ebx
        jnz .count
        test edx, edx
        jz .new                         ; "other", first seen
        ld eax, [ip_flows]
        cmp eax, MAX_FLOWS
        jc .new_ip
        mov edx, 0                      ; no room: the frame counts as "other"
        mov esi, 0
        mov edi, 0
        call find_flow
        test ebx, ebx
        jnz .count
        jmp .new
.new_ip:
        inc eax
        st [ip_flows], eax
.new:   ld eax, [flow_count]
        mov ebx, eax
        mul ebx, FLOW_SIZE
        add ebx, flows
        inc eax
        st [flow_count], eax
        st [ebx + FLOW_TYPE], edx
        st [ebx + FLOW_SRC], esi
        st [ebx + FLOW_DST], edi
.count: ld eax, [ebx + FLOW_PACKETS]
        inc eax
        st [ebx + FLOW_PACKETS], eax
        ld eax, [ebx + FLOW_BYTES]
        add eax, ecx
        st [ebx + FLOW_BYTES], eax
        ret

; find_flow: ebx = the flow with key (edx, esi, edi), or 0. Clobbers eax, ebp.
find_flow:
        ld eax, [flow_count]
        mov ebx, flows
.next:  test eax, eax
        jz .none
        ld ebp, [ebx + FLOW_TYPE]
        cmp ebp, edx
        jnz .skip
        ld ebp, [ebx + FLOW_SRC]
        cmp ebp, esi
        jnz .skip
        ld ebp, [ebx + FLOW_DST]
        cmp ebp, edi
        jz .found
.skip:  add ebx, FLOW_SIZE
        dec eax
        jmp .next
.none:  mov ebx, 0
.found: ret

; report: builds the report in out and sends it to the agent. Clobbers eax, ebx, ecx, edx, edi.
report:
        mov edi, out
        mov eax, BILL_MAGIC
        st [edi], eax
        mov eax, 1
        stb [edi + 4], eax
        ld eax, [flow_count]
        stb [edi + 5], eax
        ld eax, [total_packets]
        add edi, 6
        call put_be32
        ld eax, [total_bytes]
        call put_be32
        ld ecx, [flow_count]
        mov ebx, flows
.flow:  test ecx, ecx
        jz .send
        ld eax, [ebx + FLOW_TYPE]
        call put_be16
        ld eax, [ebx + FLOW_SRC]        ; the addresses as they came: already network order
        st [edi], eax
        ld eax, [ebx + FLOW_DST]
        st [edi + 4], eax
        add edi, 8
        ld eax, [ebx + FLOW_PACKETS]
        call put_be32
        ld eax, [ebx + FLOW_BYTES]
        call put_be32
        add ebx, FLOW_SIZE
        dec ecx
        jmp .flow
.send:  sub edi, out
        mov edx, edi
        REPORT out, edx
        ret

; put_be32 / put_be16: eax big-endian at edi; edi moves past it. Clobber eax.
put_be32:
        stb [edi + 3], eax
        shr eax, 8
        stb [edi + 2], eax
        shr eax, 8
        stb [edi + 1], eax
        shr eax, 8
        stb [edi], eax
        add edi, 4
        ret
put_be16:
        stb [edi + 1], eax
        shr eax, 8
        stb [edi], eax
        add edi, 2
        ret

msg_running:    .ascii "billing: running in ring "
msg_ring:       .ascii "?\n"
msg_running_end:
        .align 8

; Variables and buffers past the image: the node zeroes the segment before loading.
image_end:
dirty           equ image_end           ; counted since the last report
total_packets   equ image_end + 4
total_bytes     equ image_end + 8
flow_count      equ image_end + 12      ; flows in the table, "other" included
ip_flows        equ image_end + 16      ; of those, IPv4 address pairs
flows           equ image_end + 32      ; (MAX_FLOWS + 1) * FLOW_SIZE
out             equ flows + (MAX_FLOWS + 1) * FLOW_SIZE
buf             equ out + REPORT_HEADER + (MAX_FLOWS + 1) * REPORT_FLOW
