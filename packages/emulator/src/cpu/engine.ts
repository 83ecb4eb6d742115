/**
 * One setting of the JavaScript engine that the CPU's speed depends on (issue 3), made when this
 * module loads, before any of the CPU's functions has run or been optimised.
 *
 * The far transfers of fast-transfers.ts are straight-line functions built from small helpers
 * (find a descriptor, check a stack, load a segment register). V8 inlines callees into an optimised
 * function only up to a total of 920 bytes of their bytecode (`--max-inlined-bytecode-size-
 * cumulative`); a call through a gate with its stack switch needs about 3000, so with the default
 * the helpers after the first few stayed calls. Measured on this machine's Node 20 (V8 11.3):
 *
 * - a CALLF through a call gate and its RETF, called directly in a loop: 150 ns at 920, 92-97 ns at
 *   3000 (no gain beyond); INT 0x80 and IRET alike;
 * - bench/cpu.ts, alternating processes: the mixed workload 0.198-0.201 of the bare loop at 920,
 *   0.216-0.232 at 3000; the compute loop unchanged.
 *
 * The setting is the process's, like any V8 flag: a process that imports the emulator optimises
 * all its code with the larger budget (bigger optimised code, somewhat longer compiles). A budget
 * given on the command line (`node --max-inlined-bytecode-size-cumulative=N`) is left as it is.
 */
import { setFlagsFromString } from 'node:v8';

/** Bytes of bytecode V8 may inline into one optimised function. */
export const INLINE_BUDGET = 3000;

const FLAG = '--max-inlined-bytecode-size-cumulative';

/** The budget the command line gave (V8 reads `-` and `_` in a flag's name alike), if any. */
const given = process.execArgv.map((a) => a.replaceAll('_', '-')).find((a) => a.startsWith(`${FLAG}=`));

if (given === undefined) setFlagsFromString(`${FLAG}=${INLINE_BUDGET}`);

/** The budget in effect and who set it (bench/cpu.ts prints it). */
export const engineSettings: { readonly inlineBudget: string; readonly setBy: 'emulator' | 'command line' } =
  given === undefined
    ? { inlineBudget: String(INLINE_BUDGET), setBy: 'emulator' }
    : { inlineBudget: given.slice(FLAG.length + 1), setBy: 'command line' };
