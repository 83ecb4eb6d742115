/**
 * How fast this host is right now: the bare switch-dispatch loop of bench/cpu.ts (the compute loop's
 * nine operations on typed arrays, no checks), in MIPS. The host is shared and its speed moves by
 * a factor of two without notice (the loop between about 125 and 290 MIPS), so a benchmark whose
 * figure depends on it prints it beside its own: bench/cpu.ts after each window, bench/download.ts
 * before each round. bench/run.ts skips files whose names begin with `_`.
 */

/** The reference: a bare switch-dispatch loop over the compute loop's operations, no checks. */
export function bareRun(prog: Int32Array, reg: Int32Array, mem: Int32Array, n: number): number {
  let pc = 0;
  let flags = 0;
  for (let k = 0; k < n; k++) {
    const w = prog[pc]!;
    const imm = prog[pc + 1]!;
    const a = (w >>> 8) & 7;
    const b = (w >>> 12) & 7;
    let next = pc + 2;
    switch (w & 0xff) {
      case 0x20:
        reg[a] = (reg[a]! + reg[b]!) | 0;
        flags = reg[a] === 0 ? 0x40 : 0;
        break;
      case 0x34:
        reg[a] = reg[a]! ^ imm;
        flags = reg[a] === 0 ? 0x40 : 0;
        break;
      case 0x37:
        reg[a] = reg[a]! << (imm & 31);
        break;
      case 0x23:
        reg[a] = reg[a]! | reg[b]!;
        break;
      case 0x12:
        reg[a] = mem[(imm + reg[b]!) & 0xffff]!;
        break;
      case 0x30:
        reg[a] = (reg[a]! + imm) | 0;
        break;
      case 0x13:
        mem[(imm + reg[b]!) & 0xffff] = reg[a]!;
        break;
      case 0x43:
        reg[a] = (reg[a]! - 1) | 0;
        break;
      default:
        next = imm;
    }
    pc = next;
  }
  return flags;
}

/** The bare loop's program (the compute loop's nine operations) and state, shared by every window. */
const bare = (() => {
  const prog = new Int32Array(18);
  const ops = [0x20, 0x34, 0x37, 0x23, 0x12, 0x30, 0x13, 0x43, 0x50];
  for (let i = 0; i < ops.length; i++) {
    prog[i * 2] = ops[i]! | ((i & 7) << 8) | (((i + 1) & 7) << 12);
    prog[i * 2 + 1] = ops[i] === 0x50 ? 0 : 5;
  }
  return { prog, reg: new Int32Array(8), mem: new Int32Array(1 << 16) };
})();

/** MIPS of one window of the bare loop (3 000 000 iterations; it is warm after the first). */
export function bareWindow(): number {
  const start = performance.now();
  bareRun(bare.prog, bare.reg, bare.mem, 3_000_000);
  return 3_000_000 / ((performance.now() - start) * 1000);
}
