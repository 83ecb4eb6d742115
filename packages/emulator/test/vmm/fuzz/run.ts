/**
 * One fuzz program, on the bare machine and in a VE (one SDT policy, or VEDT substitution),
 * compared (harness.ts) modulo the known differences (known.ts). A witness program runs to its
 * witness on both, is compared, and executes that one instruction on each.
 */
import type { Vmm } from '../../../src/vmm/vmm.js';
import type { BugId } from './bugs.js';
import { type FuzzProgram, generate } from './generator.js';
import {
  BareRun,
  BUDGET,
  buildRom,
  cpuDifferences,
  type Difference,
  dword,
  type Outcome,
  type Rom,
  ramDifferences,
  resultDifferences,
  transcriptDifference,
  type VeConfig,
  VeRun,
} from './harness.js';
import { expectVe, type KnownId, stackSelector, WITNESS_OF } from './known.js';
import type { WitnessKind } from './witness.js';

export interface RunOptions {
  readonly seed: number;
  readonly config: VeConfig;
  /** Make it a witness program of this kind. */
  readonly witness?: WitnessKind;
  /** Open bugs the generator keeps clear of. */
  readonly avoid: ReadonlySet<BugId>;
}

export type Explained = Partial<Record<KnownId, number>>;

export interface ProgramReport {
  readonly seed: number;
  readonly config: VeConfig;
  readonly program: FuzzProgram;
  /** Differences no known difference explains: each is a VMM bug (or a fuzzer bug). */
  readonly unexplained: Difference[];
  /** Differences explained, by known difference. */
  readonly explained: Explained;
  /** A witness program: it reached its witness, and the VE then differed from the bare machine. */
  readonly witness?: { readonly kind: WitnessKind; readonly reached: boolean; readonly differed: boolean };
  /** Instructions the bare machine executed. */
  readonly executed: number;
  /** The VM manager threw (a host error): do not reuse it. */
  readonly hostError: boolean;
}

const count = (explained: Explained, id: KnownId): void => {
  explained[id] = (explained[id] ?? 0) + 1;
};

/** The differences of two outcomes; RAM dwords are checked against `stack-selector-rpl`. */
export function compare(bare: Outcome, ve: Outcome, explained: Explained): Difference[] {
  const out = [
    ...resultDifferences(bare.result, ve.result),
    ...transcriptDifference(bare.transcript, ve.transcript),
    ...cpuDifferences(bare.cpu, ve.cpu),
  ];
  for (const at of ramDifferences(bare.ram, ve.ram)) {
    const b = dword(bare.ram, at);
    const v = dword(ve.ram, at);
    if (stackSelector(at, b, v)) count(explained, 'stack-selector-rpl');
    else
      out.push({
        where: `ram[0x${at.toString(16)}]`,
        bare: `0x${b.toString(16)}`,
        ve: `0x${v.toString(16)}`,
      });
  }
  return out;
}

export function runProgram(vmm: Vmm, o: RunOptions): ProgramReport {
  const program = generate(
    o.seed,
    o.witness === undefined ? { avoid: o.avoid } : { witness: o.witness, avoid: o.avoid },
  );
  const rom = buildRom(program);
  const bare = new BareRun(rom);
  const ve = new VeRun(vmm, rom, o.config);
  const explained: Explained = {};
  const base = { seed: o.seed, config: o.config, program, explained, hostError: false };
  const stop = program.witness === undefined ? undefined : rom.labels.get('fz_witness');
  let executed = 0;
  try {
    const b = bare.run(BUDGET, stop);
    executed = b.result.executed;
    const v = ve.run(BUDGET, stop);
    const unexplained = compare(b, v, explained);
    const kind = program.witness;
    if (kind === undefined || stop === undefined) return { ...base, unexplained, executed };
    const reached = b.result.reason === 'breakpoint' && v.result.reason === 'breakpoint';
    if (!reached || unexplained.length > 0) {
      return { ...base, unexplained, executed, witness: { kind, reached, differed: false } };
    }
    const step = stepWitness(vmm, rom, stop, kind, bare, ve, v, explained);
    return {
      ...base,
      unexplained: step.unexplained,
      executed,
      witness: { kind, reached, differed: step.differed },
    };
  } catch (err) {
    const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return { ...base, unexplained: [{ where: 'host error', bare: '', ve: msg }], executed, hostError: true };
  } finally {
    try {
      ve.delete();
    } catch {
      // a VE whose run threw may not delete cleanly; the caller replaces its Vmm
    }
  }
}

/**
 * Executes the witness instruction alone on both machines. The VE then shows either exactly the
 * bare outcome (the instruction trapped and the virtual CPU executed it: a page the shadow tables
 * had not mapped yet, say) or exactly the bare outcome with the known difference applied.
 */
function stepWitness(
  vmm: Vmm,
  rom: Rom,
  stop: number,
  kind: WitnessKind,
  bare: BareRun,
  ve: VeRun,
  preVe: Outcome,
  explained: Explained,
): { unexplained: Difference[]; differed: boolean } {
  const sdt = ve.ve.stats().currentSdt;
  const postBare = bare.run(1);
  const postVe = ve.run(1);
  const real = vmm.machine;
  const e = expectVe({
    kind,
    code: rom.bytes.subarray(stop - 0xffff_0000, stop - 0xffff_0000 + 8),
    preVe,
    postBare,
    sdt,
    outwardGuard: true,
    realRead: (lin, size, user) => {
      // The real MMU's walk, without its side effects (accessed bits, TLB).
      let pa = lin;
      if (real.mmu.paging) {
        const pde = real.phys.read32(((real.mmu.cr3 & ~0xfff) + (lin >>> 22) * 4) >>> 0);
        if (!(pde & 1)) return undefined;
        const pte = real.phys.read32(((pde & ~0xfff) + ((lin >>> 12) & 0x3ff) * 4) >>> 0);
        if (!(pte & 1) || (user && !(pde & pte & 4))) return undefined;
        pa = ((pte & ~0xfff) | (lin & 0xfff)) >>> 0;
      }
      return size === 4 ? real.phys.read32(pa) : real.phys.read8(pa);
    },
    stub: (vector) => rom.labels.get(`fz_fs_${vector}`)!,
  });
  if (!e.ok) return { unexplained: [{ where: `witness ${kind}`, bare: e.why, ve: '' }], differed: false };
  const top = (postBare.cpu.segBase[2]! + postBare.cpu.reg[4]!) >>> 0;
  const pushed = kind.startsWith('push') && top + 4 <= postBare.ram.length;
  const differed =
    compare(postBare, postVe, {}).length > 0 ||
    (pushed && dword(postBare.ram, top) !== dword(postVe.ram, top));
  if (!differed) return { unexplained: [], differed };
  const after = compare(e.ve, postVe, explained);
  if (after.length === 0) {
    count(explained, WITNESS_OF[kind]);
    return { unexplained: [], differed };
  }
  // Not the known difference: shown with the plain differences, bare against VE.
  for (const d of compare(postBare, postVe, {})) after.push({ ...d, where: `(bare vs VE) ${d.where}` });
  return { unexplained: after, differed };
}

/** A report's failure as text: what to replay, and the first differences. */
export function describeFailure(r: ProgramReport): string {
  const p = r.program;
  const head =
    `seed 0x${r.seed.toString(16)} (${r.seed}) on ${r.config}: rings ${p.rings.join(',')}` +
    `${p.paging ? ', paging' : ''}${r.witness === undefined ? '' : `, witness ${r.witness.kind}`}` +
    ` (replay: npx tsx --conditions=source packages/emulator/test/vmm/fuzz/replay.ts ${r.seed} ${r.config}` +
    `${r.witness === undefined ? '' : ` ${r.witness.kind}`})`;
  const lines = r.unexplained.slice(0, 8).map((d) => `  ${d.where}: bare ${d.bare}, VE ${d.ve}`);
  return [head, ...lines].join('\n');
}
