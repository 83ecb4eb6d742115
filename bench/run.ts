/**
 * Benchmark runner: `npm run bench -- <name>` runs bench/<name>.ts; without a name, every benchmark.
 * Each benchmark prints its figures and ends with one `RESULT name=value ...` line.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { raiseInliningBudget } from '@clefnet/emulator';

// Before any machine runs (packages/emulator/src/cpu/engine.ts says why).
raiseInliningBudget();

const here = fileURLToPath(new URL('.', import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; available: ${all.join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : all) {
  console.log(`# bench ${name}`);
  const mod = (await import(pathToFileURL(`${here}${name}.ts`).href)) as { main: () => Promise<void> | void };
  await mod.main();
}
