/**
 * Replays one fuzz program and finds the first instruction after which the bare machine and the VE
 * differ (bisecting on the instruction budget, each run from reset):
 *
 *   npx tsx --conditions=source packages/emulator/test/vmm/fuzz/replay.ts <seed> [config] [witness]
 *       [--from n] [--source]
 *
 * `config`: P1 (default), P2, P3, adaptive, vedt-trap, vedt-overwrite. With CLEFNET_FUZZ_OPEN_BUGS=1
 * the program is generated as the fuzz test then generates it (without avoiding the open bugs).
 * The first difference may be a known one that the program masks right after (MOV r,CS, PUSHF,
 * LAR): `--from n` looks after instruction n. `--source` also prints the program's assembly.
 */
import { disassemble } from '../../../src/asm/disasm.js';
import { BUG_IDS } from './bugs.js';
import { generate } from './generator.js';
import { BareRun, BUDGET, buildRom, newVmm, type VeConfig, VeRun } from './harness.js';
import { compare } from './run.js';
import type { WitnessKind } from './witness.js';

const argv = process.argv.slice(2);
const fromAt = argv.indexOf('--from');
const from = fromAt < 0 ? 0 : Number(argv[fromAt + 1]);
const args = argv.filter((a, i) => a !== '--source' && (fromAt < 0 || (i !== fromAt && i !== fromAt + 1)));
const seed = Number(args[0]);
const config = (args[1] ?? 'P1') as VeConfig;
const witness = args[2] as WitnessKind | undefined;
const avoid = new Set(process.env.CLEFNET_FUZZ_OPEN_BUGS === '1' ? [] : BUG_IDS);
const program = generate(seed, witness === undefined ? { avoid } : { witness, avoid });
const rom = buildRom(program);

function runTo(n: number) {
  const vmm = newVmm();
  const bare = new BareRun(rom).run(n);
  const vr = new VeRun(vmm, rom, config);
  const ve = vr.run(n);
  return { bare, ve, differences: compare(bare, ve, {}), vr };
}

let lo = from;
let hi = BUDGET;
if (runTo(hi).differences.length === 0) {
  console.log(`seed ${seed} on ${config}: no difference in ${BUDGET} instructions`);
} else {
  while (lo + 1 < hi) {
    const mid = (lo + hi) >>> 1;
    if (runTo(mid).differences.length > 0) hi = mid;
    else lo = mid;
  }
  const before = runTo(lo);
  const after = runTo(hi);
  const cpu = before.bare.cpu;
  const lin = (cpu.segBase[1]! + cpu.eip) >>> 0;
  let label = '';
  let labelAt = 0;
  for (const [name, at] of rom.labels) {
    if (at <= lin && at >= labelAt) [label, labelAt] = [name, at];
  }
  const text = lin >= 0xffff_0000 ? disassemble(rom.bytes, lin - 0xffff_0000) : '(not in the ROM)';
  const h = (x: number) => x.toString(16);
  console.log(`seed ${seed} on ${config}: the first difference is after instruction ${hi}:`);
  console.log(`  0x${h(lin)} (${label}+${lin - labelAt}): ${text}`);
  console.log(`  before it: ring ${cpu.segSel[1]! & 3}, registers ${cpu.reg.map(h).join(' ')}`);
  console.log(`  EFLAGS ${h(cpu.eflags)}, selectors ${cpu.segSel.map(h).join(' ')}`);
  const stats = before.vr.ve.stats();
  console.log(`  VE: SDT ${stats.currentSdt}, policy ${stats.policy}`);
  for (const d of after.differences) console.log(`  ${d.where}: bare ${d.bare}, VE ${d.ve}`);
}
if (process.argv.includes('--source'))
  console.log(program.main.split('fz_fs_0:')[0], '\n; GDT\n', program.gdt);
