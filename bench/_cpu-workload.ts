/**
 * One workload of bench/cpu.ts in a process of its own (`inFreshProcess` there says why): runs the
 * workload named by its argument and sends the result to the parent. bench/run.ts skips files whose
 * names begin with `_`.
 */
import { raiseInliningBudget } from '@clefnet/emulator';
import { runWorkload } from './cpu.js';

// Before any machine runs (packages/emulator/src/cpu/engine.ts says why), as bench/run.ts does.
raiseInliningBudget();
const result = runWorkload(process.argv[2] ?? '');
if (process.send === undefined) console.log(JSON.stringify(result));
else process.send(result, () => process.disconnect());
