/**
 * One setting of the JavaScript engine that the CPU's speed depends on (issue 3), for a process
 * that runs machines to set before they run: {@link raiseInliningBudget}. The benchmarks and the
 * ANC service call it first thing; a script that imports the emulator may, and without it every
 * machine runs the same, only slower.
 *
 * The far transfers of fast-transfers.ts are straight-line functions built from small helpers
 * (find a descriptor, check a stack, load a segment register). V8 inlines callees into an optimised
 * function only up to a total of 920 bytes of their bytecode (`--max-inlined-bytecode-size-
 * cumulative`); a call through a gate with its stack switch needs about 3000, so with the default
 * the helpers after the first few stay calls. Measured on this machine's Node 20 (V8 11.3):
 *
 * - a CALLF through a call gate and its RETF, called directly in a loop: 150 ns at 920, 92-97 ns at
 *   3000 (no gain beyond); INT 0x80 and IRET alike;
 * - bench/cpu.ts, alternating processes: the mixed workload 0.198-0.201 of the bare loop at 920,
 *   0.216-0.232 at 3000; the compute loop unchanged.
 *
 * A V8 flag is the whole process's: once raised, all its code is optimised with the larger budget
 * (bigger optimised code, somewhat longer compiles), which is why the emulator does not raise it
 * when imported. Node documents flags changed at run time as unsupported; this one is read each
 * time a function is optimised, so it applies to what is optimised afterwards (the benchmark's
 * figures show it). A budget given on the command line (`node --max-inlined-bytecode-size-
 * cumulative=N`) is left as it is; so is one set at run time by other code, which this cannot see.
 * Vitest passes no such flag to its workers: the test suite runs with V8's default.
 */
import { setFlagsFromString } from 'node:v8';

/** Bytes of bytecode V8 may inline into one optimised function, once raised. */
export const INLINE_BUDGET = 3000;

/** V8's own default (V8 11.3, Node 20). */
const V8_DEFAULT = 920;

const FLAG = '--max-inlined-bytecode-size-cumulative';

/** The inlining budget in effect and what set it (bench/cpu.ts prints it). */
export interface EngineSettings {
  readonly inlineBudget: number;
  readonly setBy: 'V8 default' | 'clefnet' | 'command line';
}

/**
 * The budget a process's command line (`process.execArgv`) gives, if any. V8 reads `-` and `_`
 * alike in a flag's name, and one leading dash as well as two; the last one given counts.
 */
export function commandLineBudget(execArgv: readonly string[]): number | undefined {
  let budget: number | undefined;
  for (const arg of execArgv) {
    const eq = arg.indexOf('=');
    if (eq < 0) continue;
    const name = arg.slice(0, eq).replaceAll('_', '-');
    if (name !== FLAG && name !== FLAG.slice(1)) continue;
    const n = Number(arg.slice(eq + 1));
    if (Number.isSafeInteger(n)) budget = n;
  }
  return budget;
}

let raised = false;

/** What {@link raiseInliningBudget} did, or would leave, in this process. */
export function engineSettings(): EngineSettings {
  const given = commandLineBudget(process.execArgv);
  if (given !== undefined) return { inlineBudget: given, setBy: 'command line' };
  return raised
    ? { inlineBudget: INLINE_BUDGET, setBy: 'clefnet' }
    : { inlineBudget: V8_DEFAULT, setBy: 'V8 default' };
}

/**
 * Raises V8's inlining budget to {@link INLINE_BUDGET} unless the command line set it. Call it
 * before any machine runs (functions optimised before keep their code). Idempotent.
 */
export function raiseInliningBudget(): EngineSettings {
  if (!raised && commandLineBudget(process.execArgv) === undefined) {
    setFlagsFromString(`${FLAG}=${INLINE_BUDGET}`);
    raised = true;
  }
  return engineSettings();
}
