/**
 * tinyos (guests/tinyos) on the bare machine: the boot ROM loads the kernel from disk; the kernel
 * sets up its GDT, IDT, TSS and paging, gives the console to a ring-1 driver and a file to a ring-2
 * service, and runs five ring-3 programs round-robin on the timer, three of which break a
 * protection rule and are killed. The console transcript must equal guests/tinyos/expected.txt.
 */
import { readFileSync } from 'node:fs';
import {
  CR0,
  createMachine,
  FL,
  type Machine,
  memoryBlockBackend,
  SECTOR_SIZE,
  type StopReason,
} from '@clefnet/emulator';
import { describe, expect, it } from 'vitest';
import { buildTinyOs, TINYOS_DIR } from '../guests/build.js';

const CLOCK = Date.UTC(2026, 0, 1);
/** tinyos uses physical memory up to its user slots' end (0x50000); 1 MiB keeps snapshots small. */
const RAM_BYTES = 1 << 20;
const BUDGET = 2_000_000;

interface Boot {
  readonly machine: Machine;
  readonly reason: StopReason;
  readonly executed: number;
  /** Ring changes seen between instructions ("3->0": count), from the CPU's trace hook. */
  readonly transitions: Record<string, number>;
}

function boot(): Boot {
  const { rom, disk } = buildTinyOs();
  const backend = memoryBlockBackend(disk.length / SECTOR_SIZE);
  backend.bytes.set(disk);
  const machine = createMachine({ rom, disk: backend, clock: () => CLOCK, ramBytes: RAM_BYTES });
  const transitions: Record<string, number> = {};
  let ring = machine.cpu.cpl;
  machine.cpu.trace = (cpu) => {
    if (cpu.cpl === ring) return;
    const key = `${ring}->${cpu.cpl}`;
    transitions[key] = (transitions[key] ?? 0) + 1;
    ring = cpu.cpl;
  };
  const r = machine.run(BUDGET);
  return { machine, reason: r.reason, executed: r.executed, transitions };
}

const first = boot();

describe('tinyos on the bare machine', () => {
  it('prints the expected transcript', () => {
    const expected = readFileSync(new URL('expected.txt', TINYOS_DIR), 'utf8');
    expect(first.machine.console.transcript()).toBe(expected);
  });

  it('ends halted in ring 0 with interrupts off and paging on', () => {
    const cpu = first.machine.cpu;
    expect(first.reason).toBe('halt');
    expect(first.executed).toBeLessThan(BUDGET);
    expect(cpu.cpl).toBe(0);
    expect(cpu.eflags & FL.IF).toBe(0);
    expect(cpu.cr0 >>> 0).toBe((CR0.PG | CR0.WP | CR0.ET | CR0.PE) >>> 0);
  });

  it('runs code in all four rings and moves between them only by gates, interrupts and returns', () => {
    // 0->1 / 1->0: each kernel print (RETF out to the ring-1 driver, DPL-1 call gate back);
    // 3->1 / 1->3: program B's console writes (DPL-3 call gate, RETF 8); 3->2 / 2->3: program C's
    // file read (DPL-3 call gate into ring 2); 2->0 / 0->2: a timer tick that landed in ring 2, which
    // the kernel does not preempt; 0->3 / 3->0: IRET into tasks, INT 0x80, timer ticks, faults.
    expect(first.transitions).toEqual({
      '0->1': 133,
      '1->0': 133,
      '0->2': 1,
      '2->0': 1,
      '0->3': 36,
      '3->0': 36,
      '1->3': 7,
      '3->1': 7,
      '2->3': 1,
      '3->2': 1,
    });
  });

  it('is deterministic: a second boot gives the same transcript and machine snapshot', () => {
    const second = boot();
    expect(second.executed).toBe(first.executed);
    expect(second.machine.console.transcript()).toBe(first.machine.console.transcript());
    expect(Buffer.from(second.machine.save()).equals(Buffer.from(first.machine.save()))).toBe(true);
  });
});
