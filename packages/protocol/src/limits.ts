/**
 * Size limits on every field and frame (issue 2 point 7, docs/protocol.md §Limits). A decoder checks
 * each length prefix against its limit before it reads the field, so no input can make it allocate
 * more than {@link FRAME_MAX_BYTES}.
 */
export const LIMITS = {
  /** Whole transport frame, as received from a socket. */
  FRAME_MAX_BYTES: 1_179_648, // 1 MiB program + 128 KiB for envelopes and headers
  /** A Name: DNS rules, RFC 1035 §2.3.4. */
  NAME_MAX_BYTES: 253,
  LABEL_MAX_BYTES: 63,
  /** A payload tag such as "CLEF?". */
  TAG_MAX_BYTES: 16,
  /** A New Program (step 7). */
  PROGRAM_MAX_BYTES: 1_048_576,
  /** Application data carried on the ASD channel (TB-17), each way. */
  CHANNEL_DATA_MAX_BYTES: 65_536,
  /** Error code and detail text of an error answer. */
  ERROR_CODE_MAX_BYTES: 32,
  ERROR_DETAIL_MAX_BYTES: 256,
  /** Routing correlation id (TB-15: outside the envelope, never trusted). */
  CORRELATION_MAX_BYTES: 64,
  /** Network location of KServ2 in the triple hand-over (PROTO-23). */
  LOCATION_MAX_BYTES: 256,
  /** Nonce of the freshness rule. */
  NONCE_BYTES: 16,
} as const;
