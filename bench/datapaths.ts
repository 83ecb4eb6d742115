/**
 * Data-path benchmark (issue 5). Guest code streams 1514-byte frames from one VE to another with
 * credit-based flow control (bench/guests/net.s: bursts of 32, one credit frame back per burst),
 * every NIC access a real trap into the VMM, every frame through the DTM:
 *
 * - `hub pass` / `hub spool`: configuration A (Fig. 9A), pass-through and full spooling (each
 *   frame a transaction written to the spool, scanned by the signature scanner, delivered, deleted);
 * - `modem channel`: configuration B (Fig. 9B), the sender on a modem link, translated to ethernet;
 * - `linked DTMs`: configuration C (Fig. 9C), sender and receiver on two DTMs sharing a spool;
 * - `firewall`: the four-machine desktop's path (Fig. 10A): a VE -> inside DTM -> the firewall
 *   guest -> outside DTM -> gateway 22 -> the wire, and the credit back in from the wire;
 * - `gateway pass` / `gateway direct`: the same VE to the wire without the firewall, through its
 *   DTM, or on DTM-11's direct path (TRADE-2's fastest choice);
 *
 * - `disk plain` / `disk encrypted`: a VE guest (bench/guests/disk.s) reading its disk in 4 KiB
 *   commands and summing every byte (and writing: filling each buffer first), interrupt-driven,
 *   from a plain region of the machine's disk and from one encrypted with XTS-AES-256 under a
 *   data key wrapped to the machine key (the VE profile's `encryption`). The plain and the
 *   encrypted guest of each command take turns of 100 commands within one run (`diskPair`), so
 *   that their ratio compares them at the same host speed.
 *
 * Figures are frames per second and MB/s of frame bytes (disk: of sectors moved), over this
 * process's CPU time. `dtm_mbps` is the hub pass-through figure, `firewall_mbps` the firewall path
 * (target: at least half of dtm_mbps); `disk_enc_mbps` should be at least 70% of `disk_plain_mbps`.
 */

import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  assemble,
  Dtm,
  ETHERTYPE_DATAGRAM,
  Gateway,
  generateDataKey,
  installMachineKey,
  memoryBlockBackend,
  memoryNvramBackend,
  memorySpool,
  signatureScanner,
  type VirtualEnvironment,
  Vmm,
  veMac,
  virtualFirewall,
  wrapDataKey,
} from '@clefnet/emulator';
import { generateTriple, type Name, nodeBackend, seededRandom } from '@clefnet/protocol';
import { buildFirewall } from '../guests/firewall/build.js';

const SIZE = 1514;
const BURST = 32;
const FRAMES = Number(process.env.DATAPATH_FRAMES ?? 6400);
const SOURCE = readFileSync(new URL('./guests/net.s', import.meta.url), 'utf8');

function bytesLines(label: string, b: Uint8Array): string {
  const padded = new Uint8Array(Math.ceil(Math.max(b.length, 64) / 4) * 4);
  padded.set(b);
  const lines = [`${label}:`];
  for (let i = 0; i < padded.length; i += 32)
    lines.push(`        .byte ${Array.from(padded.subarray(i, i + 32)).join(', ')}`);
  return lines.join('\n');
}

function netRom(role: 1 | 2, frame: Uint8Array, ack: Uint8Array): Uint8Array {
  const data = [
    `ROLE equ ${role}`,
    `BURST equ ${BURST}`,
    `SIZE equ ${frame.length}`,
    bytesLines('data_frame', frame),
    '        .align 4',
    bytesLines('ack_frame', ack),
  ].join('\n');
  return assemble(SOURCE.replace(';@DATA', data), { origin: 0xffff0000, file: 'net.s' }).bytes;
}

function ether(dst: Uint8Array, src: Uint8Array, size: number): Uint8Array {
  const f = new Uint8Array(size);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = ETHERTYPE_DATAGRAM >>> 8;
  f[13] = ETHERTYPE_DATAGRAM & 0xff;
  for (let i = 14; i < size; i++) f[i] = (i * 7) & 0xff;
  return f;
}

function modem(size: number): Uint8Array {
  const f = new Uint8Array(size);
  f.set([0xff, 0x03, 0x4a, 0x37]);
  for (let i = 4; i < size; i++) f[i] = (i * 7) & 0xff;
  return f;
}

const count = (ve: VirtualEnvironment) =>
  new DataView(ve.vm.phys.ram.buffer, ve.vm.phys.ram.byteOffset).getUint32(0x3000, true);

interface Figure {
  readonly name: string;
  /** Frames, or sectors. */
  readonly units: number;
  readonly bytes: number;
  readonly seconds: number;
}

/** Runs the VEs round-robin until `done()` counts FRAMES; CPU seconds. */
// A full collection before each measurement, so that no scenario pays for the garbage of the one
// before it (the first of each round did, by a third).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function measure(name: string, vmm: Vmm, done: () => number, target = FRAMES, unitBytes = SIZE): Figure {
  const ves = vmm.list();
  gc();
  const t0 = process.cpuUsage();
  let guard = 0;
  while (done() < target) {
    for (const ve of ves) vmm.run(ve.id, 200_000);
    if (++guard > 100_000) throw new Error(`${name}: no progress (${done()} done)`);
  }
  const u = process.cpuUsage(t0);
  return { name, units: done(), bytes: done() * unitBytes, seconds: (u.user + u.system) / 1e6 };
}

const clock = () => Date.UTC(2026, 10, 27);
const ve = (vmm: Vmm, name: string, rom: Uint8Array, nics: 1 | 2 = 1) =>
  vmm.createVe({ name, memoryBytes: 1 << 20, rom, nvram: memoryNvramBackend(), nics });

function pair(mode: 'pass' | 'spool' | 'modem' | 'linked'): Figure {
  const vmm = new Vmm({ clock, ramBytes: 16 << 20 });
  const s = veMac(1);
  const r = veMac(2);
  const sender = ve(vmm, 's', netRom(1, mode === 'modem' ? modem(SIZE) : ether(r, s, SIZE), ether(s, r, 60)));
  const receiver = ve(vmm, 'r', netRom(2, ether(s, r, 60), ether(s, r, 60)));
  const spool = memorySpool(8 << 20);
  const dtm = new Dtm({
    name: 'a',
    id: 1,
    core: vmm.core,
    spool,
    clock,
    ...(mode === 'spool' ? { scanner: signatureScanner('X5O!P%@AP') } : {}),
  });
  vmm.addService(() => dtm.service());
  const m = mode === 'spool' ? 'spool' : 'pass';
  dtm.attach({
    name: 's',
    nic: sender.vm.nic,
    mode: m,
    ...(mode === 'modem' ? { medium: 'modem', channel: 'r' } : {}),
  });
  if (mode === 'linked') {
    const other = new Dtm({ name: 'b', id: 2, core: vmm.core, spool, clock });
    dtm.link(other);
    vmm.addService(() => other.service());
    other.attach({ name: 'r', nic: receiver.vm.nic, mode: m });
  } else {
    dtm.attach({ name: 'r', nic: receiver.vm.nic, mode: m });
  }
  const names = { pass: 'hub pass', spool: 'hub spool', modem: 'modem channel', linked: 'linked DTMs' };
  return measure(names[mode], vmm, () => count(receiver));
}

/**
 * The far end of the wire: counts the frames that leave the machine and sends `credit` back in
 * after each burst. Returns the count.
 */
function farEnd(vmm: Vmm, credit: Uint8Array): () => number {
  let seen = 0;
  vmm.machine.nic.on('transmit', () => {
    seen++;
    if (seen % BURST === 0) vmm.machine.nic.receive(credit);
  });
  return () => seen;
}

function firewallPath(): Figure {
  const vmm = new Vmm({ clock, ramBytes: 16 << 20 });
  const gw = new Gateway(vmm);
  const far = Uint8Array.of(0x02, 0x99, 0, 0, 0, 1);
  const open = ve(vmm, 'open', netRom(1, ether(far, veMac(1), SIZE), ether(far, veMac(1), 60)));
  const fwVe = ve(
    vmm,
    'firewall',
    buildFirewall({ outbound: [ETHERTYPE_DATAGRAM], inbound: [ETHERTYPE_DATAGRAM], inboundTo: veMac(1) }),
    2,
  );
  const fw = virtualFirewall({
    config: 'A',
    core: vmm.core,
    clock,
    firewall: { inside: fwVe.vm.nics[0]!, outside: fwVe.vm.nics[1]! },
    gateway: gw,
    spools: { dtm: memorySpool(), firewall: memorySpool() },
  });
  fw.inside.attach({ name: 'open', nic: open.vm.nic, mode: 'pass' });
  for (const d of fw.dtms) vmm.addService(() => d.service());
  // The far end: counts what arrives on the wire and sends a credit per burst.
  return measure('firewall', vmm, farEnd(vmm, ether(veMac(fwVe.id, 1), far, 60)));
}

/**
 * A VE streaming to the outside without the firewall: through its DTM to gateway 22 (`pass`), or
 * on DTM-11's direct path (`direct`); the far end sends the credit back.
 */
function gatewayPath(direct: boolean): Figure {
  const vmm = new Vmm({ clock, ramBytes: 16 << 20 });
  const gw = new Gateway(vmm);
  const far = Uint8Array.of(0x02, 0x99, 0, 0, 0, 1);
  const s = ve(vmm, 's', netRom(1, ether(far, veMac(1), SIZE), ether(far, veMac(1), 60)));
  if (direct) gw.attachDirect(s.vm.nic);
  else {
    const dtm = new Dtm({ name: 'a', id: 1, core: vmm.core, spool: memorySpool(), clock });
    gw.connect(dtm);
    dtm.attach({ name: 's', nic: s.vm.nic, mode: 'pass' });
    vmm.addService(() => dtm.service());
  }
  return measure(direct ? 'gateway direct' : 'gateway pass', vmm, farEnd(vmm, ether(veMac(1), far, 60)));
}

const DISK_SECTORS = 4096;
const DISK_SOURCE = readFileSync(new URL('./guests/disk.s', import.meta.url), 'utf8');
const diskRom = (command: 1 | 2) =>
  assemble(
    DISK_SOURCE.replace('ROM_BASE equ', `COMMAND equ ${command}\nSECTORS equ ${DISK_SECTORS}\nROM_BASE equ`),
    {
      origin: 0xffff0000,
      file: 'disk.s',
    },
  ).bytes;
const DISK_ROMS = { 1: diskRom(1), 2: diskRom(2) };
const machineTriple = generateTriple(
  nodeBackend,
  seededRandom('bench/machine'),
  'bench.machines.example' as Name,
);
const dataKey = generateDataKey(seededRandom('bench/disk'));
const diskHeader = wrapDataKey(dataKey, {
  backend: nodeBackend,
  random: seededRandom('bench/wrap'),
  partition: 'disk',
  scheme: 'machine',
  machine: machineTriple.clef,
});
/** Commands of 4 KiB per measurement. */
const DISK_COMMANDS = Number(process.env.DATAPATH_DISK_COMMANDS ?? 6000);

/** A disk guest's VM manager, ready to run (`done`: commands completed). */
function diskSetup(command: 1 | 2, encrypted: boolean): { vmm: Vmm; done: () => number } {
  const vmm = new Vmm({
    clock,
    ramBytes: 8 << 20,
    disk: memoryBlockBackend(DISK_SECTORS + 16),
    nvram: memoryNvramBackend(installMachineKey(new Uint8Array(256), machineTriple.name, machineTriple.key)),
  });
  vmm.bootMachineKey(nodeBackend);
  const d = vmm.createVe({
    name: 'disk',
    memoryBytes: 1 << 20,
    rom: DISK_ROMS[command],
    nvram: memoryNvramBackend(),
    disk: { start: 16, count: DISK_SECTORS },
    ...(encrypted ? { encryption: { header: diskHeader } } : {}),
  });
  return { vmm, done: () => count(d) };
}

/** Commands per turn when the plain and encrypted disk guests take turns. */
const DISK_TURN = 100;

/**
 * The plain and the encrypted disk guest of one command, taking turns of DISK_TURN commands until
 * each has done DISK_COMMANDS, each turn's CPU time added to its own side. Measured so, both see
 * the same host speed (it drifts within a second here), which two runs one after the other do not:
 * their ratio moved by a third from round to round.
 */
function diskPair(command: 1 | 2): Figure[] {
  const op = command === 1 ? 'read' : 'write';
  const sides = [
    { name: `disk plain ${op}`, ...diskSetup(command, false), seconds: 0 },
    { name: `disk encrypted ${op}`, ...diskSetup(command, true), seconds: 0 },
  ];
  gc();
  let guard = 0;
  for (let turn = 0; sides.some((x) => x.done() < DISK_COMMANDS); turn++) {
    // each side first every other turn
    for (const side of turn % 2 === 0 ? sides : [...sides].reverse()) {
      const until = Math.min(DISK_COMMANDS, side.done() + DISK_TURN);
      const ve = side.vmm.list()[0]!;
      const t0 = process.cpuUsage();
      while (side.done() < until) {
        side.vmm.run(ve.id, 200_000);
        if (++guard > 1_000_000) throw new Error(`${side.name}: no progress (${side.done()} done)`);
      }
      const u = process.cpuUsage(t0);
      side.seconds += (u.user + u.system) / 1e6;
    }
  }
  return sides.map((x) => ({
    name: x.name,
    units: x.done() * 8,
    bytes: x.done() * 8 * 512,
    seconds: x.seconds,
  }));
}

type Scenario =
  | 'hub pass'
  | 'hub spool'
  | 'modem channel'
  | 'linked DTMs'
  | 'firewall'
  | 'gateway pass'
  | 'gateway direct'
  | 'disk plain read'
  | 'disk encrypted read'
  | 'disk plain write'
  | 'disk encrypted write';
/** What each run measures: one scenario, or the two disk guests of one command taking turns. */
const RUNS: Record<string, () => Figure[]> = {
  'hub pass': () => [pair('pass')],
  'hub spool': () => [pair('spool')],
  'modem channel': () => [pair('modem')],
  'linked DTMs': () => [pair('linked')],
  firewall: () => [firewallPath()],
  'gateway pass': () => [gatewayPath(false)],
  'gateway direct': () => [gatewayPath(true)],
  'disk read': () => diskPair(1),
  'disk write': () => diskPair(2),
};
const SCENARIOS: readonly Scenario[] = [
  'hub pass',
  'hub spool',
  'modem channel',
  'linked DTMs',
  'firewall',
  'gateway pass',
  'gateway direct',
  'disk plain read',
  'disk encrypted read',
  'disk plain write',
  'disk encrypted write',
];
const ROUNDS = Number(process.env.DATAPATH_ROUNDS ?? 5);
/** Ratios taken within each round, between neighbouring runs (the host changes speed), then the median. */
const PAIRS: readonly [string, Scenario, Scenario][] = [
  ['firewall / direct DTM path', 'firewall', 'hub pass'],
  ['spool / pass', 'hub spool', 'hub pass'],
  ['firewall / gateway pass', 'firewall', 'gateway pass'],
  ['gateway pass / direct', 'gateway pass', 'gateway direct'],
  ['encrypted / plain disk read', 'disk encrypted read', 'disk plain read'],
  ['encrypted / plain disk write', 'disk encrypted write', 'disk plain write'],
];

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = (f: Figure) => f.bytes / f.seconds / 1e6;

export function main(): void {
  console.log(`data paths: ${FRAMES} frames of ${SIZE} bytes, bursts of ${BURST}, credit per burst`);
  console.log(
    `every scenario once to warm up, then ${ROUNDS} rounds (order alternating); medians of CPU time`,
  );
  const order = Object.keys(RUNS);
  for (const name of order) RUNS[name]!();
  const runs = new Map<string, Figure[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? order : [...order].reverse()) {
      for (const f of RUNS[name]!()) runs.set(f.name, [...(runs.get(f.name) ?? []), f]);
    }
  }
  const mbps = new Map<Scenario, number>();
  for (const name of SCENARIOS) {
    const fs = runs.get(name)!;
    const f = [...fs].sort((a, b) => rate(a) - rate(b))[Math.floor(fs.length / 2)]!;
    mbps.set(name, rate(f));
    const unit = name.startsWith('disk') ? 'sectors/s' : 'frames/s';
    console.log(
      `${name.padEnd(20)} ${f.seconds.toFixed(3)} s CPU: ${(f.units / f.seconds).toFixed(0).padStart(7)} ${unit.padEnd(9)} ${rate(f).toFixed(2).padStart(7)} MB/s`,
    );
  }
  const ratio = new Map<string, number>();
  for (const [label, a, b] of PAIRS) {
    const xs = runs.get(a)!.map((f, i) => rate(f) / rate(runs.get(b)![i]!));
    ratio.set(label, median(xs));
    console.log(`${label}: ${median(xs).toFixed(3)} (per round: ${xs.map((x) => x.toFixed(2)).join(' ')})`);
  }
  console.log('targets: firewall / direct >= 0.5, encrypted / plain disk >= 0.7');
  const m = (name: Scenario) => mbps.get(name)!.toFixed(2);
  console.log(
    `RESULT dtm_mbps=${m('hub pass')} dtm_spool_mbps=${m('hub spool')} firewall_mbps=${m('firewall')} ` +
      `disk_plain_mbps=${m('disk plain read')} disk_enc_mbps=${m('disk encrypted read')} ` +
      `disk_plain_write_mbps=${m('disk plain write')} disk_enc_write_mbps=${m('disk encrypted write')} ` +
      `firewall_ratio=${ratio.get('firewall / direct DTM path')!.toFixed(3)} ` +
      `disk_enc_ratio=${ratio.get('encrypted / plain disk read')!.toFixed(3)} ` +
      `disk_enc_write_ratio=${ratio.get('encrypted / plain disk write')!.toFixed(3)}`,
  );
}
