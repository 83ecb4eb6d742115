/** EFLAGS bits (x86 positions). */
export const FL = {
  CF: 1 << 0,
  FIXED: 1 << 1, // always 1
  PF: 1 << 2,
  AF: 1 << 4,
  ZF: 1 << 6,
  SF: 1 << 7,
  TF: 1 << 8,
  IF: 1 << 9,
  DF: 1 << 10,
  OF: 1 << 11,
  IOPL: 3 << 12,
  NT: 1 << 14,
} as const;

export const IOPL_SHIFT = 12;

/** Flags any POPF/IRET may restore (the IF and IOPL rules are applied separately). */
export const RESTORABLE = FL.CF | FL.PF | FL.AF | FL.ZF | FL.SF | FL.TF | FL.DF | FL.OF | FL.NT;

/** CR0 bits. */
export const CR0 = { PE: 1 << 0, TS: 1 << 3, ET: 1 << 4, WP: 1 << 16, PG: 1 << 31 } as const;
/** CR4 bits. */
/**
 * CR4 bits. SFT (bit 1, this machine's own VM assist, used by the VM manager for ring compression):
 * at CPL > 0, POPF and IRET raise #GP(0) instead of silently keeping IF (when CPL > IOPL) or IOPL
 * (when CPL > 0) at a value different from the popped one. x86 has no such bit (its PVI only covers
 * CLI/STI at CPL 3); see docs/isa.md.
 */
export const CR4 = { SFT: 1 << 1, TSD: 1 << 2, UMIP: 1 << 11 } as const;
