/**
 * Exceptions with their x86 vectors (SDM Vol. 3A §6.3.1). Inside an instruction a fault is thrown
 * as a {@link CpuFault} (cheap: it is rare, and it lets every check run before any state changes);
 * the run loop catches it and delivers it through the IDT, so to the host a guest fault is a value
 * in the step result or a state change, never an exception.
 */
export const VEC = {
  DE: 0,
  DB: 1,
  NMI: 2,
  BP: 3,
  OF: 4,
  UD: 6,
  NM: 7,
  DF: 8,
  TS: 10,
  NP: 11,
  SS: 12,
  GP: 13,
  PF: 14,
} as const;

export const VECTOR_NAMES: Readonly<Record<number, string>> = {
  0: '#DE',
  1: '#DB',
  2: 'NMI',
  3: '#BP',
  4: '#OF',
  6: '#UD',
  7: '#NM',
  8: '#DF',
  10: '#TS',
  11: '#NP',
  12: '#SS',
  13: '#GP',
  14: '#PF',
};

/** Exceptions that push an error code (SDM Table 6-1). */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17;
}

/** Contributory exceptions (SDM Table 6-4), for the double-fault rule. */
export function isContributory(vector: number): boolean {
  return vector === 0 || (vector >= 10 && vector <= 13);
}

export class CpuFault {
  constructor(
    readonly vector: number,
    /** Error code (undefined for vectors that push none). */
    readonly errorCode: number | undefined,
  ) {}

  toString(): string {
    const name = VECTOR_NAMES[this.vector] ?? `vector ${this.vector}`;
    return this.errorCode === undefined ? name : `${name}(0x${this.errorCode.toString(16)})`;
  }
}

export const fault = (vector: number, errorCode?: number): CpuFault =>
  new CpuFault(vector, hasErrorCode(vector) ? (errorCode ?? 0) : undefined);

/** Error code of a selector-related fault: the selector with RPL cleared, EXT bit as given. */
export const selErr = (selector: number, ext = 0): number => (selector & 0xfffc) | ext;
