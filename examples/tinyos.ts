/**
 * Boots tinyos (guests/tinyos) on the bare emulated machine and streams its console to stdout:
 * the ROM loads the kernel from disk, the kernel sets up all four rings, paging, a ring-1 console
 * driver and a ring-2 file service, and runs five ring-3 tasks under the timer.
 *
 *   npm run tinyos                 # the console
 *   npm run tinyos -- --trace 40   # also the first 40 instructions (address, ring, selectors)
 */
import { parseArgs } from 'node:util';
import { createMachine, formatTrace, memoryBlockBackend, SECTOR_SIZE, startTrace } from '@clefnet/emulator';
import { buildTinyOs } from '../guests/build.js';

const { values } = parseArgs({ options: { trace: { type: 'string', default: '0' } } });
const traceCount = Number(values.trace);
if (!Number.isInteger(traceCount) || traceCount < 0) {
  console.error(`--trace takes a number of instructions, not ${values.trace}`);
  process.exit(2);
}
const { rom, disk } = buildTinyOs();
const backend = memoryBlockBackend(disk.length / SECTOR_SIZE);
backend.bytes.set(disk);
const machine = createMachine({ rom, disk: backend, clock: () => Date.UTC(2026, 0, 1), ramBytes: 1 << 20 });
machine.console.on('output', (byte) => process.stdout.write(String.fromCharCode(byte)));
if (traceCount > 0) startTrace(machine.cpu, (e) => process.stderr.write(`${formatTrace(e)}\n`), traceCount);
const r = machine.run(5_000_000);
process.stdout.write(`\n[machine stopped: ${r.reason} after ${r.executed} instructions, ${r.idle} idle]\n`);
