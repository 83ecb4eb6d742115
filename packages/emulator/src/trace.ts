/**
 * The instruction trace (issue 3): for each instruction, before it runs, its linear address, the
 * ring, the selectors in CS, SS and DS, and its disassembly. Switched on per run; off costs one
 * undefined check per instruction.
 */
import { disassemble } from './asm/disasm.js';
import type { Cpu } from './cpu/cpu.js';
import { S } from './cpu/isa.js';

export interface TraceEntry {
  readonly address: number;
  readonly ring: number;
  readonly cs: number;
  readonly ss: number;
  readonly ds: number;
  readonly text: string;
}

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');

export function formatTrace(e: TraceEntry): string {
  return `${hex(e.address, 8)} r${e.ring} cs=${hex(e.cs, 4)} ss=${hex(e.ss, 4)} ds=${hex(e.ds, 4)}  ${e.text}`;
}

/**
 * Starts tracing `cpu` into `sink` (at most `limit` entries, default unbounded); returns the function
 * that stops it. The bytes are read through the MMU as the CPU would fetch them; an instruction whose
 * fetch would fault is traced as `(fetch faults)`.
 */
export function startTrace(
  cpu: Cpu,
  sink: (e: TraceEntry) => void,
  limit = Number.POSITIVE_INFINITY,
): () => void {
  let n = 0;
  const stop = () => {
    cpu.beforeStep = undefined;
  };
  cpu.beforeStep = (c) => {
    if (n++ >= limit) {
      stop();
      return;
    }
    const address = (c.segBase[S.CS]! + c.eip) >>> 0;
    let text: string;
    try {
      const user = c.cpl === 3;
      const bytes = new Uint8Array(8);
      const v = new DataView(bytes.buffer);
      v.setUint32(0, c.readLinear32(address, user), true);
      v.setUint32(4, c.readLinear32((address + 4) >>> 0, user), true);
      text = disassemble(bytes, 0);
    } catch {
      text = '(fetch faults)';
    }
    sink({ address, ring: c.cpl, cs: c.segSel[S.CS]!, ss: c.segSel[S.SS]!, ds: c.segSel[S.DS]!, text });
  };
  return stop;
}
