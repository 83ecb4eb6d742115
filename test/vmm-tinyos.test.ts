/**
 * Issue 4, equivalence: the tinyos image, byte for byte the one the bare machine boots, runs in
 * virtual environments and gives the same console transcript and the same guest-visible state at
 * the same points, under every SDT policy, three VEs at once, each with its own disk file.
 *
 * The one difference the guest can see is in memory: a native call through a call gate from a
 * compressed ring (virtual ring 1, real ring 3) into virtual ring 0 pushes the caller's CS and SS
 * with the real RPL 3 (docs/vmm.md). The test asserts that every differing dword is exactly such a
 * selector.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Cpu,
  createMachine,
  fileBlockBackend,
  type Machine,
  memoryBlockBackend,
  type SdtPolicy,
  SECTOR_SIZE,
  Vmm,
} from '@clefnet/emulator';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTinyOs } from '../guests/build.js';

const CLOCK = Date.UTC(2026, 0, 1);
const RAM = 1 << 20;
const CHUNK = 7_000;
const MAX_CHUNKS = 40;
const { rom, disk } = buildTinyOs();
const SECTORS = disk.length / SECTOR_SIZE;
const dir = mkdtempSync(join(tmpdir(), 'clefnet-vmm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Point {
  readonly reason: string;
  readonly executed: number;
  readonly idle: number;
  readonly cpu: Record<string, unknown>;
  readonly transcript: string;
  readonly ram: Uint8Array;
}

function cpuState(c: Cpu): Record<string, unknown> {
  return {
    reg: [...c.reg],
    eip: c.eip,
    eflags: c.eflags,
    sel: [...c.segSel],
    base: [...c.segBase],
    limit: [...c.segLimit],
    hi: [...c.segHi],
    gdt: [c.gdtBase, c.gdtLimit],
    idt: [c.idtBase, c.idtLimit],
    ldt: [c.ldtSel, c.ldtUsable],
    tr: [c.trSel, c.trBase, c.trLimit],
    cr: [c.cr0, c.cr4, c.mmu.cr3, c.mmu.cr2, c.mmu.paging],
    halted: c.halted,
    shadow: c.interruptShadow,
  };
}

function point(
  m: Machine,
  r: { reason: string; executed: number; idle: number },
  ram: Uint8Array = m.phys.ram.slice(),
): Point {
  return { ...r, cpu: cpuState(m.cpu), transcript: m.console.transcript(), ram };
}

function bareRun(): Point[] {
  const backend = memoryBlockBackend(SECTORS);
  backend.bytes.set(disk);
  const m = createMachine({ rom, disk: backend, clock: () => CLOCK, ramBytes: RAM });
  const out: Point[] = [];
  for (let i = 0; i < MAX_CHUNKS; i++) {
    const r = m.run(CHUNK);
    out.push(point(m, r));
    if (r.reason !== 'budget') break;
  }
  return out;
}

const bare = bareRun();

/** Dwords that differ; each must be a selector whose only difference is RPL virtual 1/2 vs real 3. */
function rplOnlyDiffs(a: Uint8Array, b: Uint8Array): string[] {
  const va = new Uint32Array(a.buffer, a.byteOffset, a.length / 4);
  const vb = new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
  const out: string[] = [];
  for (let i = 0; i < va.length; i++) {
    if (va[i] === vb[i]) continue;
    const x = va[i]!;
    const y = vb[i]!;
    const ok = (x ^ y) === ((x ^ y) & 3) && (y & 3) === 3 && ((x & 3) === 1 || (x & 3) === 2) && x < 0x10000;
    out.push(`${(i * 4).toString(16)}:${x.toString(16)}/${y.toString(16)}${ok ? '' : ' NOT AN RPL'}`);
  }
  return out;
}

function expectSame(ves: Point[], name: string): void {
  expect(ves.length, `${name}: checkpoints`).toBe(bare.length);
  for (const [i, b] of bare.entries()) {
    const v = ves[i]!;
    const at = `${name}, checkpoint ${i}`;
    expect({ reason: v.reason, executed: v.executed, idle: v.idle }, at).toEqual({
      reason: b.reason,
      executed: b.executed,
      idle: b.idle,
    });
    expect(v.cpu, at).toEqual(b.cpu);
    expect(v.transcript, at).toBe(b.transcript);
    const diffs = rplOnlyDiffs(b.ram, v.ram);
    expect(
      diffs.filter((d) => d.endsWith('NOT AN RPL')),
      at,
    ).toEqual([]);
  }
  // At the end, exactly the three selectors tinyos's ring-1 console driver pushes when it calls
  // back into the kernel through the DPL-1 gate (CS, SS of the ring-1 caller).
  expect(rplOnlyDiffs(bare.at(-1)!.ram, ves.at(-1)!.ram), name).toEqual([
    '22f64:19/1b',
    '22f74:19/1b',
    '22f7c:21/23',
  ]);
}

describe('tinyos in virtual environments (equivalence)', () => {
  it('the bare run halts within the checkpoints (the reference the VEs are compared with)', () => {
    expect(bare.at(-1)!.reason).toBe('halt');
    expect(bare.length).toBeLessThan(MAX_CHUNKS);
  });

  it.each(['P1', 'P2', 'P3'] as SdtPolicy[])(
    'three VEs at once under %s, each with its own disk file, match the bare machine at every checkpoint',
    (policy) => {
      const vmm = new Vmm({ clock: () => CLOCK, ramBytes: 8 << 20 });
      const ves = [0, 1, 2].map((i) => {
        const path = join(dir, `${policy}-${i}.img`);
        writeFileSync(path, disk);
        return vmm.createVe({
          name: `tinyos-${i}`,
          memoryBytes: RAM,
          rom,
          diskImage: fileBlockBackend(path),
          sdtPolicy: policy,
        });
      });
      const points: Point[][] = [[], [], []];
      // Round-robin: one chunk of each VE in turn, so the three are interleaved on the real CPU.
      for (let round = 0; round < MAX_CHUNKS; round++) {
        for (const [i, ve] of ves.entries()) {
          if (points[i]!.at(-1)?.reason === 'halt') continue;
          const r = vmm.run(ve.id, CHUNK);
          points[i]!.push(point(ve.vm, r, ve.guestRam()));
        }
      }
      for (const [i, p] of points.entries()) expectSame(p, `${policy} VE ${i}`);
      const s = ves[0]!.stats();
      expect(s.policy).toBe(policy);
      expect(s.reflected, 'the three programs tinyos kills, by the faults the bare machine raises').toBe(3);
    },
    60_000,
  );

  it.each(['trap', 'overwrite', 'auto'] as const)(
    'under VEDT substitution (current ring, write method %s) it matches the bare machine at every checkpoint',
    (method) => {
      const vmm = new Vmm({ clock: () => CLOCK, ramBytes: 8 << 20 });
      const path = join(dir, `vedt-${method}.img`);
      writeFileSync(path, disk);
      const ve = vmm.createVe({
        name: 'tinyos',
        memoryBytes: RAM,
        rom,
        diskImage: fileBlockBackend(path),
        vedt: { mode: 'current-ring', method, guard: true },
      });
      const points: Point[] = [];
      for (let i = 0; i < MAX_CHUNKS && points.at(-1)?.reason !== 'halt'; i++) {
        const r = vmm.run(ve.id, CHUNK);
        points.push(point(ve.vm, r, ve.guestRam()));
      }
      expectSame(points, `VEDT ${method}`);
      const s = ve.stats();
      expect(s.vedt?.active).toBe(true);
      // tinyos keeps its GDT in its data page: every access to that page is a masked read or a
      // trapped or direct write.
      expect(s.vedt!.readTraps).toBeGreaterThan(0);
      if (method === 'overwrite') expect(s.vedt!.opens).toBeGreaterThan(0);
      else expect(s.vedt!.writeTraps).toBeGreaterThan(0);
    },
    60_000,
  );
});
