/**
 * Three settings of the JavaScript engine that the CPU's speed depends on (issue 3), for a process
 * that runs machines to set before they run: {@link raiseInliningBudget}. The benchmarks and the
 * ANC service call it first thing; a script that imports the emulator may, and without it every
 * machine runs the same, only slower (or, for the second, now and then much slower for a while).
 *
 * 1. The inlining budget. The far transfers of fast-transfers.ts are straight-line functions built
 *    from small helpers (find a descriptor, check a stack, load a segment register). V8 inlines
 *    callees into an optimised function only up to a total of 920 bytes of their bytecode
 *    (`--max-inlined-bytecode-size-cumulative`); a call through a gate with its stack switch needs
 *    about 3000, so with the default the helpers after the first few stay calls. Measured on this
 *    machine's Node 20 (V8 11.3):
 *    - a CALLF through a call gate and its RETF, called directly in a loop: 150 ns at 920, 92-97 ns
 *      at 3000 (no gain beyond); INT 0x80 and IRET alike;
 *    - bench/cpu.ts, alternating processes: the mixed workload 0.198-0.201 of the bare loop at 920,
 *      0.216-0.232 at 3000; the compute loop unchanged.
 * 2. The wait before V8 optimises a function again after its feedback changed
 *    (`--minimum-invocations-after-ic-update`, 500 calls; set to 50). The run loop (exec.ts) falls
 *    back to unoptimised code whenever an instruction takes a path it had not taken before (a
 *    deoptimisation), and V8 optimises it again only once the loop has been *called* that many
 *    times since its feedback last changed. With the block compiler (jit.ts) doing most of the work
 *    inside blocks, each call of the run loop is short and new feedback keeps arriving, and in
 *    about a third of bench/vmm.ts's processes the loop stayed unoptimised for seconds: its trap
 *    path ran at 2.5 us a trap instead of 0.6 and the system-call guest's overhead was 3.3 instead
 *    of 1.8 (%GetOptimizationStatus showed baseline code). At 50: 6 processes of 6 at 0.59-0.63 us.
 * 3. On-stack replacement (`--use-osr`; turned off). When the run loop is deoptimised while a long
 *    slice is in its loop, V8 may compile optimised code for the loop alone (OSR) instead of for
 *    the function, and then leave the function itself unoptimised: every later call starts in
 *    baseline code and enters the loop's code from there, which for the short slices of a VM
 *    manager's traps is the slow path of (2) again. Seen once blocks made far transfers (jit.ts)
 *    and the bare system-call guest's slices ran long: in 5 of 14 bench/vmm.ts processes the loop
 *    was in baseline code through the system-call figure (%GetOptimizationStatus; --trace-opt
 *    showed an OSR compile after its deoptimisation, no other), its overhead 3.2-3.5 instead of
 *    1.8-2.0 and a trap 1.8-5 us instead of 0.6. With OSR off: 5 of 5 optimised, 1.85-1.97. The run
 *    loop needs no OSR: the machine runs it in slices (`Machine.run`), so it is called often
 *    enough for V8 to optimise it whole; bench/cpu.ts's figures were unchanged (0.283-0.285 of the
 *    bare loop against 0.271-0.277 with OSR, in alternating runs). A loop of the process's own that
 *    runs once for long would stay unoptimised, so only processes that run machines set it.
 *
 * A V8 flag is the whole process's: once set, all its code is optimised with it (bigger optimised
 * code, somewhat longer compiles, a few more optimisations), which is why the emulator does not set
 * them when imported. Node documents flags changed at run time as unsupported; these are read when
 * a function is optimised (or considered for it), so they apply to what comes afterwards (the
 * benchmarks' figures show it). A value given on the command line (`node --max-inlined-bytecode-
 * size-cumulative=N`) is left as it is; so is one set at run time by other code, which this cannot
 * see. Vitest passes no such flag to its workers: the test suite runs with V8's defaults.
 */
import { setFlagsFromString } from 'node:v8';

/** Bytes of bytecode V8 may inline into one optimised function, once raised. */
export const INLINE_BUDGET = 3000;

/** Calls V8 waits for, after a function's feedback changed, before it optimises it again. */
export const TIER_UP_WAIT = 50;

/** The flags this module sets: name, the value it sets, V8's own default (V8 11.3, Node 20). */
const INLINE = { name: '--max-inlined-bytecode-size-cumulative', value: INLINE_BUDGET, v8Default: 920 };
const TIER_UP = { name: '--minimum-invocations-after-ic-update', value: TIER_UP_WAIT, v8Default: 500 };
/** On-stack replacement: on by default, turned off. */
const OSR = '--use-osr';

type SetBy = 'V8 default' | 'clefnet' | 'command line';

/** The settings in effect and what set each (bench/cpu.ts prints them). */
export interface EngineSettings {
  readonly inlineBudget: number;
  readonly setBy: SetBy;
  readonly tierUpWait: number;
  readonly tierUpWaitSetBy: SetBy;
  /** Whether V8 compiles loops on their own while they run (on-stack replacement). */
  readonly osr: boolean;
  readonly osrSetBy: SetBy;
}

/**
 * The value a process's command line (`process.execArgv`) gives flag `name`, if any. V8 reads `-`
 * and `_` alike in a flag's name, and one leading dash as well as two; the last one given counts.
 */
export function commandLineFlag(execArgv: readonly string[], name: string): number | undefined {
  let value: number | undefined;
  for (const arg of execArgv) {
    const eq = arg.indexOf('=');
    if (eq < 0) continue;
    const given = arg.slice(0, eq).replaceAll('_', '-');
    if (given !== name && given !== name.slice(1)) continue;
    const n = Number(arg.slice(eq + 1));
    if (Number.isSafeInteger(n)) value = n;
  }
  return value;
}

/**
 * Whether a process's command line turns boolean flag `name` (`--use-osr`) on or off, if it does:
 * `--name` on; `--no-name` or `--noname` off; `-` and `_` alike, one leading dash as well as two;
 * the last one given counts.
 */
export function commandLineSwitch(execArgv: readonly string[], name: string): boolean | undefined {
  const bare = name.slice(2);
  let value: boolean | undefined;
  for (const arg of execArgv) {
    const flag = arg.replaceAll('_', '-');
    const body = flag.startsWith('--') ? flag.slice(2) : flag.startsWith('-') ? flag.slice(1) : undefined;
    if (body === bare) value = true;
    else if (body === `no-${bare}` || body === `no${bare}`) value = false;
  }
  return value;
}

/** The inlining budget the command line gives, if any ({@link commandLineFlag}). */
export function commandLineBudget(execArgv: readonly string[]): number | undefined {
  return commandLineFlag(execArgv, INLINE.name);
}

let raised = false;

function setting(flag: typeof INLINE | typeof TIER_UP): [number, SetBy] {
  const given = commandLineFlag(process.execArgv, flag.name);
  if (given !== undefined) return [given, 'command line'];
  return raised ? [flag.value, 'clefnet'] : [flag.v8Default, 'V8 default'];
}

/** What {@link raiseInliningBudget} did, or would leave, in this process. */
export function engineSettings(): EngineSettings {
  const [inlineBudget, setBy] = setting(INLINE);
  const [tierUpWait, tierUpWaitSetBy] = setting(TIER_UP);
  const osrGiven = commandLineSwitch(process.execArgv, OSR);
  const [osr, osrSetBy]: [boolean, SetBy] =
    osrGiven !== undefined ? [osrGiven, 'command line'] : raised ? [false, 'clefnet'] : [true, 'V8 default'];
  return { inlineBudget, setBy, tierUpWait, tierUpWaitSetBy, osr, osrSetBy };
}

/**
 * Sets V8's inlining budget to {@link INLINE_BUDGET} and its tier-up wait to
 * {@link TIER_UP_WAIT}, and turns on-stack replacement off, each unless the command line set it.
 * Call it before any machine runs (functions optimised before keep their code). Idempotent.
 */
export function raiseInliningBudget(): EngineSettings {
  if (!raised) {
    for (const flag of [INLINE, TIER_UP]) {
      if (commandLineFlag(process.execArgv, flag.name) === undefined) {
        setFlagsFromString(`${flag.name}=${flag.value}`);
      }
    }
    if (commandLineSwitch(process.execArgv, OSR) === undefined) setFlagsFromString(`--no-${OSR.slice(2)}`);
    raised = true;
  }
  return engineSettings();
}
