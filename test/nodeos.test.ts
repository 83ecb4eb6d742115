/**
 * nodeos (guests/nodeos, docs/nodeos.md) in a VE on the VM manager: boot and the key trap, module
 * delivery and its checks, ring 3 and the system calls, faults. The test plays the host's agent:
 * it puts frames on the VE's NIC and collects what the NIC transmits.
 */
import {
  buildFrame,
  createMachine,
  decodeImage,
  ETHERTYPE_DATAGRAM,
  ETHERTYPE_IPV4,
  ETHERTYPE_TRANSACTION,
  installMachineKey,
  type MachineRunResult,
  memoryNvramBackend,
  recognise,
  Vmm,
  type VmmEvent,
  veMac,
} from '@clefnet/emulator';
import {
  createMemoryKeyServerStore,
  generateTriple,
  KeyServer,
  type Name,
  nodeBackend,
  type Outbound,
  seededRandom,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { moduleImage } from '../examples/modules/build.js';
import {
  assembleNodeOs,
  buildNodeOs,
  moduleFrames,
  NODEOS,
  type NodeOsCounter,
  nodeOsCounters,
} from '../guests/nodeos/build.js';

const T0 = Date.UTC(2026, 10, 27);
const backend = nodeBackend;
const provision = seededRandom('nodeos-test/provision');
const MACHINE = generateTriple(backend, provision, 'anc1.machines.example' as Name);
const KS1 = generateTriple(backend, provision, 'ks1.example' as Name);
const VE_NAME = 'node.anc1.example' as Name;
/** The host-side agent, and a stranger on the same wire. */
const AGENT = Uint8Array.of(0x02, 0xa9, 0x00, 0x00, 0x00, 0x01);
const STRANGER = Uint8Array.of(0x02, 0x66, 0x00, 0x00, 0x00, 0x09);
/** The node VE is the VMM's first: its NIC's address. */
const NODE = veMac(1);
const PEER = Uint8Array.of(0x02, 0xbb, 0x00, 0x00, 0x00, 0x02);
const SLICE = 100_000;

const UP = 'nodeos: up, mac 02:c1:ef:00:00:01\n';
const WAITING = 'nodeos: waiting for a module\n';

interface NodeOptions {
  /** Build nodeos with the key trap call (default true); the VE gets a key trap either way unless `veKeyTrap` is false. */
  readonly keyTrap?: boolean;
  readonly veKeyTrap?: boolean;
  /** KServ1 knows the machine (default true): otherwise it refuses every key request. */
  readonly registerMachine?: boolean;
}

/** A VMM with the machine key, KServ1 behind an in-memory transport, and the node VE. */
function node(o: NodeOptions = {}) {
  const events: VmmEvent[] = [];
  const vmm = new Vmm({
    clock: () => T0,
    nvram: memoryNvramBackend(installMachineKey(new Uint8Array(256), MACHINE.name, MACHINE.key)),
    onEvent: (e) => events.push(e),
  });
  vmm.bootMachineKey(backend);
  const ks1 = new KeyServer({
    triple: KS1,
    backend,
    random: seededRandom('nodeos-test/ks1'),
    clock: () => T0,
    store: createMemoryKeyServerStore(),
    serves: ['clef', 'mint'],
    nameOwnership: { policy: 'owner-only' },
  });
  if (o.registerMachine ?? true) ks1.register({ name: MACHINE.name, clef: MACHINE.clef });
  const service = vmm.startKeyService({
    keyServer: { name: KS1.name, clef: KS1.clef, scopes: ['clef', 'mint'] },
    transport: (f: Outbound) => {
      for (const back of ks1.receive(f.bytes).send) service.receive(back.bytes);
    },
    backend,
    random: seededRandom('nodeos-test/machine'),
    clock: () => T0,
  });
  const ve = vmm.createVe({
    name: 'node',
    memoryBytes: 1 << 20,
    rom: buildNodeOs({ agent: AGENT, keyTrap: o.keyTrap ?? true }),
    ...(o.veKeyTrap === false ? {} : { keyTrap: { name: VE_NAME } }),
  });
  const sent: Uint8Array[] = [];
  ve.vm.nic.on('transmit', (f) => sent.push(f));
  const transcript = () => ve.vm.console.transcript();
  let mark = 0;
  let nextTxid = 0x1000;
  const time = { executed: 0, idle: 0 };

  /**
   * Runs slices until `done` holds after one (it sees the slice's result), at most `max`
   * instruction times (executed or halted); a test fails instead of hanging.
   */
  const runUntil = (done: (r: MachineRunResult) => boolean, max = 20_000_000): void => {
    for (let spent = 0, slices = 0; spent < max && slices < 1000; slices++) {
      const r = vmm.run(ve.id, SLICE);
      spent += r.executed + r.idle;
      time.executed += r.executed;
      time.idle += r.idle;
      if (done(r)) return;
      if (r.reason !== 'budget' && r.reason !== 'halt') throw new Error(`the VE stopped: ${r.reason}`);
    }
    throw new Error(`not done after ${max} instruction times; console:\n${transcript()}`);
  };
  const receive = (frames: readonly Uint8Array[]): void => {
    // The NIC queues 64 frames: a long transfer goes in batches, the node taking each.
    for (let i = 0; i < frames.length; i += 32) {
      for (const f of frames.slice(i, i + 32)) expect(ve.vm.nic.receive(f)).toBe(true);
      if (i + 32 < frames.length) vmm.run(ve.id, SLICE);
    }
  };
  return {
    vmm,
    ve,
    events,
    service,
    sent,
    time,
    transcript,
    runUntil,
    receive,
    /** Runs `n` instruction times, whatever happens (a module that never halts). */
    runFor(n: number): void {
      for (let left = n; left > 0; ) {
        const r = vmm.run(ve.id, Math.min(left, SLICE));
        left -= Math.max(1, r.executed + r.idle);
      }
    },
    /** Runs until the VE halts waiting for the NIC: everything it could do with what it has is done. */
    settle: () => runUntil((r) => r.reason === 'halt'),
    /** Runs until the console holds `text` after the mark. */
    until: (text: string) => runUntil(() => transcript().slice(mark).includes(text)),
    /** The console since the last call (or the start). */
    since(): string {
      const t = transcript();
      const s = t.slice(mark);
      mark = t.length;
      return s;
    },
    /** Sends a module the way the agent does (a fresh txid each time). */
    deliver(image: Uint8Array, opts: { from?: Uint8Array; chunk?: number } = {}): readonly Uint8Array[] {
      const frames = moduleFrames(image, {
        agent: opts.from ?? AGENT,
        node: NODE,
        txid: nextTxid++,
        ...(opts.chunk === undefined ? {} : { chunk: opts.chunk }),
      });
      receive(frames);
      return frames;
    },
    counters: () => nodeOsCounters(ve.vm.phys.ram),
    ram: () => ve.vm.phys.ram,
  };
}

type Node = ReturnType<typeof node>;

/** A module from assembly that includes abi.inc (`start` is the entry). */
const mod = (text: string, origin = 0): Uint8Array =>
  moduleImage(`        .include "abi.inc"\n${text}`, { file: 'test-module.s', origin });

/** The lines nodeos prints when it loads `image` (body length, entry). */
function loadedLines(image: Uint8Array): string {
  const d = decodeImage(image);
  return `nodeos: module loaded, ${d.bytes.length} bytes, entry 0x${d.entry.toString(16)}\nnodeos: entering ring 3\n`;
}

/** A module that prints `text` and exits with `code`. */
const hello = (text: string, code = 0): Uint8Array =>
  mod(`start:  WRITE msg, msg_end - msg
        EXIT ${code}
msg:    .ascii "${text}\\n"
msg_end:`);

/** Counters: all 0 but these. */
const counts = (c: Partial<Record<NodeOsCounter, number>>): Record<NodeOsCounter, number> => ({
  received: 0,
  queued: 0,
  dropped: 0,
  loaded: 0,
  badImages: 0,
  foreign: 0,
  reports: 0,
  sends: 0,
  aborted: 0,
  stray: 0,
  faults: 0,
  exits: 0,
  ...c,
});

const ether = (dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array =>
  buildFrame('ethernet', type, payload, dst, src) as Uint8Array;
const bytes = (...parts: (Uint8Array | readonly number[] | string)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...new TextEncoder().encode(p)] : [...p])));
const le32 = (...values: number[]): Uint8Array => {
  const out = new Uint8Array(values.length * 4);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => {
    v.setUint32(i * 4, x >>> 0, true);
  });
  return out;
};
/** A report frame from the node to the agent. */
const report = (payload: Uint8Array): Uint8Array => ether(AGENT, NODE, ETHERTYPE_DATAGRAM, payload);

/** Whether `hay` holds `needle`. */
function holds(hay: Uint8Array, needle: Uint8Array): boolean {
  for (let i = hay.indexOf(needle[0]!); i >= 0; i = hay.indexOf(needle[0]!, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return true;
  }
  return false;
}

/** A node booted without the key trap, its boot lines read. */
function booted(): Node {
  const w = node({ keyTrap: false });
  w.settle();
  expect(w.since()).toBe(UP + WAITING);
  return w;
}

describe('nodeos boot', () => {
  it('with a key: the transcript, the Key-VE bytes wiped from guest memory, recognised as a two-ring guest', () => {
    const w = node();
    w.settle();
    expect(w.transcript()).toBe(`${UP}nodeos: key for ${VE_NAME} version 1\n${WAITING}`);
    const entry = w.vmm.keys.get('node')!;
    expect(entry).toMatchObject({ ve: 'node', name: VE_NAME, version: 1 });
    // The key buffer: Key-VE zeroed, Clef-VE and the Name as the key trap wrote them.
    const at = NODEOS.keyBuffer;
    const ram = w.ram();
    expect(ram.slice(at, at + 64)).toEqual(new Uint8Array(64));
    expect(ram.slice(at + 64, at + 128)).toEqual(bytes(entry.clef.sign, entry.clef.seal));
    expect(ram[at + 128]).toBe(VE_NAME.length);
    expect(new TextDecoder().decode(ram.slice(at + 129, at + 129 + VE_NAME.length))).toBe(VE_NAME);
    // No copy of the key's secret halves anywhere in the VE.
    expect(holds(ram, entry.key.sign)).toBe(false);
    expect(holds(ram, entry.key.open)).toBe(false);
    // QPT-2: the GDT has segments of virtual rings 0 and 3 only, so quick pass-through is on.
    expect(w.ve.stats().qpt).toBe(true);
    expect(w.events.filter((e) => e.kind === 'qpt')).toEqual([
      { kind: 'qpt', ve: 1, on: true, reason: 'the VEDT uses virtual rings 0 and 3 only' },
    ]);
    // Not by its ROM (KNOWN_GUESTS holds tinyos only): by its VEDT, which put it under P2 with
    // the two tables SDT0 and SDT3.
    expect(recognise(buildNodeOs({ agent: AGENT }))).toBeUndefined();
    expect(w.ve.stats()).toMatchObject({ policy: 'P2', sdtsHeld: [0, 3] });
    expect(w.ve.stats().keyCalls).toBe(1);
    expect(w.counters()).toEqual(counts({}));
    expect(w.sent).toEqual([]);
  });

  it('key refused: seven retries, each after a halted timer wait, then it continues without', () => {
    const w = node({ registerMachine: false });
    w.settle();
    expect(w.transcript()).toBe(
      `${UP}${'nodeos: no key (status 2), retrying\n'.repeat(7)}nodeos: no key, continuing without\n${WAITING}`,
    );
    expect(w.service.requests).toBe(8);
    expect(w.ve.stats().keyCalls).toBe(8);
    expect(w.vmm.keys.get('node')).toBeUndefined();
    const answers = w.events.filter((e) => e.kind === 'key-trap' && e.phase === 'answer');
    expect(answers.map((e) => e.kind === 'key-trap' && e.status)).toEqual([2, 2, 2, 2, 2, 2, 2, 2]);
    // The waits were halted time (7 x 4 timer periods of 25000), less the timer handler's few
    // instructions per tick: not executed instructions.
    expect(w.time.idle).toBeGreaterThanOrEqual(7 * 4 * 25_000 - 7 * 4 * 100);
    expect(w.time.executed).toBeLessThan(20_000);
  });

  it('keyTrap false: no key call at all', () => {
    const w = node({ keyTrap: false });
    w.settle();
    expect(w.transcript()).toBe(UP + WAITING);
    expect(w.ve.stats().keyCalls).toBe(0);
    expect(w.events.filter((e) => e.kind === 'key-trap')).toEqual([]);
    expect(w.ve.stats().qpt).toBe(true);
  });

  it('the same guest on the bare machine: identical boot; a key call with no key trap behind it is a kernel fault', () => {
    const bare = createMachine({
      clock: () => T0,
      ramBytes: 1 << 20,
      rom: buildNodeOs({ agent: AGENT, keyTrap: false }),
    });
    expect(bare.run(1_000_000).reason).toBe('halt');
    expect(bare.console.transcript()).toBe(`nodeos: up, mac 02:00:00:00:00:01\n${WAITING}`);
    // Nothing answers at 0xFFFE0000 here: the call fetches the empty bus (0xFF bytes, #UD).
    const m = createMachine({ clock: () => T0, ramBytes: 1 << 20, rom: buildNodeOs({ agent: AGENT }) });
    expect(m.run(1_000_000).reason).toBe('halt');
    expect(m.console.transcript()).toBe(
      'nodeos: up, mac 02:00:00:00:00:01\nnodeos: kernel fault 6 at 0xfffe0000\n',
    );
    // The same in a VE without a key trap; it stopped with interrupts off.
    const w = node({ veKeyTrap: false });
    w.settle();
    expect(w.transcript()).toBe(`${UP}nodeos: kernel fault 6 at 0xfffe0000\n`);
    expect(w.ve.vm.cpu.eflags & 0x200).toBe(0);
  });

  it('the builder checks its options and carries them in the ROM', () => {
    expect(() => buildNodeOs({ agent: new Uint8Array(5) })).toThrow(RangeError);
    expect(() => buildNodeOs({ agent: AGENT, keyAddress: 0xffff0000 })).toThrow(RangeError);
    const r = assembleNodeOs({ agent: AGENT, keyAddress: 0xfff00000, keyTrap: false });
    expect(r.constants.get('KEY_ADDRESS')).toBe(0xfff00000);
    expect(r.constants.get('KEY_TRAP')).toBe(0);
    const at = r.labels.get('agent_mac')! - 0xffff0000;
    expect(r.bytes.slice(at, at + 6)).toEqual(AGENT);
  });
});

describe('nodeos module delivery', () => {
  // A module loaded at 0x1000 of its segment, entered at 0x1040: it saves the registers it was
  // entered with, proves its ring and segment, reports what it saw, and exits.
  const PROBE = `        .org 0x1000
msg:    .ascii "probe: ring ?\\n"
msg_end:
        .align 8
        .space 0x40 - ($ - 0x1000)
start:  st [regs], eax
        st [regs + 4], ecx
        st [regs + 8], edx
        st [regs + 12], ebx
        st [regs + 16], ebp
        st [regs + 20], esi
        st [regs + 24], edi
        st [regs + 28], esp
        mov eax, cs
        st [regs + 32], eax
        mov eax, ss
        st [regs + 36], eax
        mov eax, ds
        st [regs + 40], eax
        mov eax, es
        st [regs + 44], eax
        ld eax, [USER_SIZE - 4]     ; the last dword of the segment: zeroed by the node
        st [regs + 56], eax
        pushf
        pop eax
        st [regs + 48], eax
        mov eax, 0x23
        lsl ecx, eax                ; the data segment's limit
        st [regs + 52], ecx
        RING_DIGIT msg_end - 2
        WRITE msg, msg_end - msg
        REPORT regs, 60
        EXIT 7
regs    equ 0x8000`;

  it('a module runs in ring 3 in its own segment, with zeroed registers and IF = 1, IOPL 0, and exits', () => {
    const w = booted();
    const image = mod(PROBE, 0x1000);
    expect(decodeImage(image)).toMatchObject({ load: 0x1000, entry: 0x1040 });
    const frames = w.deliver(image);
    w.settle();
    expect(w.since()).toBe(
      `nodeos: module loaded, ${decodeImage(image).bytes.length} bytes, entry 0x1040\nnodeos: entering ring 3\n` +
        `probe: ring 3\nnodeos: module exited (code 7)\n${WAITING}`,
    );
    expect(w.sent).toEqual([
      report(
        le32(
          ...[0, 0, 0, 0, 0, 0, 0], // eax ecx edx ebx ebp esi edi
          NODEOS.userSize, // esp
          NODEOS.userCode, // cs
          NODEOS.userData, // ss
          NODEOS.userData, // ds
          NODEOS.userData, // es
          0x202, // EFLAGS: IF, IOPL 0
          NODEOS.userSize - 1, // the segment's limit
          0,
        ),
      ),
    ]);
    // The body is at USER_LO + load.
    const at = NODEOS.userBase + 0x1000;
    expect(w.ram().slice(at, at + 14)).toEqual(bytes('probe: ring 3\n'));
    expect(w.counters()).toEqual(counts({ received: frames.length, loaded: 1, reports: 1, exits: 1 }));
  });

  it("a new module's segment holds nothing of the module it replaced: all of it is zero but its body", () => {
    const w = booted();
    // Fills every dword of its segment from 0x100 up with a pattern (its own code below 0x100 is
    // left alone), then waits in RECV until it is replaced.
    const filler = mod(`start:  mov edi, 0x100
        mov eax, 0xA5A5A5A5
fill:   st [edi], eax
        add edi, 4
        cmp edi, USER_SIZE
        jnz fill
wait:   RECV 0x1000, 64, 0
        jmp wait`);
    w.deliver(filler);
    w.settle();
    const seg = () => w.ram().slice(NODEOS.userBase, NODEOS.userBase + NODEOS.userSize);
    expect(seg().slice(0x100, 0x104)).toEqual(Uint8Array.of(0xa5, 0xa5, 0xa5, 0xa5));
    expect(seg().slice(NODEOS.userSize - 4)).toEqual(Uint8Array.of(0xa5, 0xa5, 0xa5, 0xa5));
    expect(w.since()).toBe(loadedLines(filler));
    const next = hello('next');
    w.deliver(next);
    w.settle();
    expect(w.since()).toBe(
      `nodeos: module replaced\n${loadedLines(next)}next\nnodeos: module exited (code 0)\n${WAITING}`,
    );
    const body = decodeImage(next).bytes;
    const after = seg();
    expect(after.slice(0, body.length)).toEqual(body);
    // Every byte past the body, up to the segment's last one, is 0.
    expect(after.slice(body.length).findIndex((b) => b !== 0)).toBe(-1);
  });

  it('a transfer in many fragments, then another module after the first exits', () => {
    const w = booted();
    const first = hello('first', 300);
    w.deliver(first, { chunk: 7 });
    w.settle();
    expect(w.since()).toBe(`${loadedLines(first)}first\nnodeos: module exited (code 300)\n${WAITING}`);
    const second = hello('second');
    w.deliver(second);
    w.settle();
    expect(w.since()).toBe(`${loadedLines(second)}second\nnodeos: module exited (code 0)\n${WAITING}`);
    expect(w.counters()).toMatchObject({ loaded: 2, exits: 2 });
  });

  it('a new module replaces a running one, whether it waits in RECV or computes', () => {
    const w = booted();
    const waiter = mod(`start:  RECV 0x1000, 64, 0
        jmp start`);
    w.deliver(waiter);
    w.settle();
    expect(w.since()).toBe(loadedLines(waiter));
    const b = hello('b');
    w.deliver(b);
    w.settle();
    expect(w.since()).toBe(
      `nodeos: module replaced\n${loadedLines(b)}b\nnodeos: module exited (code 0)\n${WAITING}`,
    );

    // A module that never calls the kernel: the NIC's interrupt in ring 3 brings the new one.
    const spinner = mod(`start:  WRITE msg, 9
.spin:  jmp .spin
msg:    .ascii "spinning\\n"`);
    w.deliver(spinner);
    w.until('spinning\n');
    w.runFor(3 * SLICE);
    expect(w.since()).toBe(`${loadedLines(spinner)}spinning\n`);
    const c = hello('c', 3);
    w.deliver(c);
    w.settle();
    expect(w.since()).toBe(
      `nodeos: module replaced\n${loadedLines(c)}c\nnodeos: module exited (code 3)\n${WAITING}`,
    );

    // A module that spends its time in system calls (the kernel runs with the module's IF = 1):
    // an interrupt taken in ring 0 is served on the way back to ring 3.
    const caller = mod(`start:  WRITE msg, 8
.call:  SEND 0x1000, 1514
        jmp .call
msg:    .ascii "calling\\n"`);
    w.deliver(caller);
    w.until('calling\n');
    w.runFor(3 * SLICE);
    expect(w.since()).toBe(`${loadedLines(caller)}calling\n`);
    const d = hello('d', 4);
    w.deliver(d);
    w.settle();
    expect(w.since()).toBe(
      `nodeos: module replaced\n${loadedLines(d)}d\nnodeos: module exited (code 4)\n${WAITING}`,
    );
    expect(w.counters()).toMatchObject({ loaded: 6, exits: 3, faults: 0 });
  });

  /** A raw image: the CLFX header written field by field (the node checks no checksum). */
  function raw(f: {
    magic?: string;
    version?: number;
    load?: number;
    entry?: number;
    length?: number;
    body?: Uint8Array;
  }): Uint8Array {
    const body = f.body ?? hello('never').subarray(32);
    const out = new Uint8Array(32 + body.length);
    const v = new DataView(out.buffer);
    out.set(new TextEncoder().encode(f.magic ?? 'CLFX'), 0);
    v.setUint16(4, f.version ?? 1, true);
    v.setUint32(8, f.load ?? 0, true);
    v.setUint32(12, f.entry ?? 0, true);
    v.setUint32(16, f.length ?? body.length, true);
    out.set(body, 32);
    return out;
  }

  it('bad images are refused with their reason; a running module keeps running', () => {
    const w = booted();
    // The running module: reports every frame it receives.
    const echo = mod(`start:  RECV 0x1000, 128, 0
        REPORT 0x1000, eax
        jmp start`);
    w.deliver(echo);
    w.settle();
    w.since();
    const cases: [string, Uint8Array, string][] = [
      ['a wrong magic', raw({ magic: 'CLFY' }), 'magic'],
      ['version 2', raw({ version: 2 }), 'version'],
      ['an empty body', raw({ length: 0, body: new Uint8Array(0) }), 'size'],
      ['a body past the segment', raw({ load: NODEOS.userSize - 8, entry: NODEOS.userSize - 8 }), 'size'],
      ['load past the segment', raw({ load: 0xfffffff0, entry: 0xfffffff0, length: 0x20 }), 'size'],
      ['a body longer than the transfer', raw({ length: 4096 }), 'size'],
      ['fewer bytes than a header', new TextEncoder().encode('CLFX'), 'size'],
      // 1400-byte chunks: fragment 93 overflows 128 KiB, fragments 94 and 95 are strays.
      ['more than the reassembly buffer', raw({ body: new Uint8Array(NODEOS.imageMax + 2000) }), 'size'],
      ['an entry past the body', raw({ entry: 40, length: 40 }), 'entry'],
      ['an entry below the load address', raw({ load: 0x100, entry: 0xfc }), 'entry'],
    ];
    cases.forEach(([what, image, reason], i) => {
      w.deliver(image, { chunk: 1400 });
      w.settle();
      expect(w.since(), what).toBe(`nodeos: bad module image (${reason})\n`);
      expect(w.counters().badImages, what).toBe(i + 1);
    });
    // The echo module still runs: a data frame comes back as its report.
    const data = ether(NODE, PEER, 0x1234, bytes('still here'));
    w.receive([data]);
    w.settle();
    expect(w.sent).toEqual([report(data)]);
    // The fragments after the too-big transfer's overflow were ignored as strays.
    expect(w.counters()).toMatchObject({ loaded: 1, aborted: 0, stray: 2, reports: 1 });
  });

  it('an out-of-order fragment or another txid aborts the transfer; seq 0 starts over silently', () => {
    const w = booted();
    const image = hello('whole');
    const frames = moduleFrames(image, { agent: AGENT, node: NODE, txid: 5, chunk: 40 });
    expect(frames.length).toBeGreaterThan(3);
    // Fragment 1 skipped: aborted; the rest of that transfer is ignored.
    w.receive([frames[0]!, ...frames.slice(2)]);
    w.settle();
    expect(w.since()).toBe('nodeos: module transfer aborted\n');
    expect(w.counters()).toMatchObject({ aborted: 1, stray: frames.length - 3, loaded: 0 });
    // A fragment of another transfer in the middle: aborted.
    const other = moduleFrames(image, { agent: AGENT, node: NODE, txid: 6, chunk: 40 });
    w.receive([frames[0]!, other[1]!]);
    w.settle();
    expect(w.since()).toBe('nodeos: module transfer aborted\n');
    // A transfer restarted with seq 0 drops the partial one without a word, and loads.
    w.receive([frames[0]!, frames[1]!, ...other]);
    w.settle();
    expect(w.since()).toBe(`${loadedLines(image)}whole\nnodeos: module exited (code 0)\n${WAITING}`);
    expect(w.counters()).toMatchObject({ aborted: 2, loaded: 1, badImages: 0 });
  });

  it('a transaction from another address than the agent is dropped silently; so are data frames with no module', () => {
    const w = booted();
    const frames = w.deliver(hello('forged'), { from: STRANGER, chunk: 200 });
    w.receive([ether(NODE, PEER, ETHERTYPE_IPV4, new Uint8Array(40)), ether(NODE, PEER, 0x88b6, bytes('x'))]);
    w.settle();
    expect(w.since()).toBe('');
    expect(w.counters()).toEqual(counts({ received: frames.length + 2, foreign: frames.length, dropped: 2 }));
    expect(w.sent).toEqual([]);
    expect((frames[0]![12]! << 8) | frames[0]![13]!).toBe(ETHERTYPE_TRANSACTION);
  });
});

describe('nodeos system calls', () => {
  it('SEND: the frame goes out with the node as source, whatever the module wrote there', () => {
    const w = booted();
    const frame = ether(PEER, STRANGER, ETHERTYPE_IPV4, bytes('forged source', new Array(30).fill(7)));
    const image = mod(`start:  SEND frame, ${frame.length}
        st [0x1000], eax
        REPORT 0x1000, 4
        EXIT 0
frame:  .byte ${Array.from(frame).join(', ')}`);
    w.deliver(image);
    w.settle();
    expect(w.sent).toEqual([
      ether(PEER, NODE, ETHERTYPE_IPV4, frame.subarray(14)),
      report(le32(frame.length)),
    ]);
    // The module's own copy keeps what it wrote.
    const at = NODEOS.userBase + decodeImage(image).symbols.get('frame')!;
    expect(w.ram().slice(at, at + frame.length)).toEqual(frame);
    expect(w.counters()).toMatchObject({ sends: 1, reports: 1 });
  });

  it('REPORT: one 0x88B6 frame to the agent from the node, the bytes as payload (1..1024)', () => {
    const w = booted();
    w.deliver(
      mod(`start:  REPORT msg, 5
        REPORT 0x2000, 1024
        EXIT 0
msg:    .ascii "hello"`),
    );
    w.settle();
    expect(w.sent).toEqual([
      bytes([0x02, 0xa9, 0, 0, 0, 1], [0x02, 0xc1, 0xef, 0, 0, 1], [0x88, 0xb6], 'hello'),
      report(new Uint8Array(1024)),
    ]);
  });

  // Every bad pointer or length returns -1 and does nothing; good calls keep the other registers.
  const CALLS: [call: string, ebx: string, ecx: string, edx: string, result: number][] = [
    ['SYS_WRITE', 'USER_SIZE - 1', '2', '0', -1],
    ['SYS_WRITE', '0', '513', '0', -1],
    ['SYS_WRITE', '0xFFFFFFFF', '1', '0', -1],
    ['SYS_WRITE', 'USER_SIZE', '0', '0', 0],
    ['SYS_RECV', '0x3FFF0', '0x20', 'RECV_NOWAIT', -1],
    ['SYS_RECV', '0xFFFFFF00', '0x200', 'RECV_NOWAIT', -1],
    ['SYS_RECV', '0x1000', '64', 'RECV_NOWAIT', 0],
    ['SYS_SEND', '0x1000', '13', '0', -1],
    ['SYS_SEND', '0x1000', '1515', '0', -1],
    ['SYS_SEND', '0x3FFF0', '64', '0', -1],
    ['SYS_SEND', '0xFFFFFFF0', '0x20', '0', -1],
    ['SYS_REPORT', '0x1000', '0', '0', -1],
    ['SYS_REPORT', '0x1000', '1025', '0', -1],
    ['SYS_REPORT', '0xFFFFFFF0', '0x20', '0', -1],
    ['SYS_REPORT', 'USER_SIZE - 4', '8', '0', -1],
    ['0', '0', '0', '0', -1],
    ['6', '0', '0', '0', -1],
    ['0xFFFFFFFF', '0', '0', '0', -1],
  ];

  it('bad pointers and lengths return -1; unknown calls -1; registers other than EAX are kept', () => {
    const w = booted();
    const calls = CALLS.map(
      ([call, ebx, ecx, edx]) => `        mov ebx, ${ebx}
        mov ecx, ${ecx}
        mov edx, ${edx}
        SYSCALL ${call}
        st [edi], eax
        add edi, 4`,
    );
    const image = mod(`start:  mov ebx, msg
        mov ecx, 3
        mov edx, 0x33333333
        mov esi, 0x11111111
        mov ebp, 0x22222222
        mov edi, 0x44444444
        SYSCALL SYS_WRITE
        st [0x3000], eax
        st [0x3004], ebx
        st [0x3008], ecx
        st [0x300C], edx
        st [0x3010], esi
        st [0x3014], ebp
        st [0x3018], edi
        REPORT 0x3000, 28
        mov edi, 0x2000
${calls.join('\n')}
        sub edi, 0x2000
        mov ecx, edi
        REPORT 0x2000, ecx
        EXIT 0
msg:    .ascii "ok\\n"`);
    w.deliver(image);
    w.settle();
    expect(w.since()).toBe(`${loadedLines(image)}ok\nnodeos: module exited (code 0)\n${WAITING}`);
    const msg = decodeImage(image).symbols.get('msg')!;
    expect(w.sent).toEqual([
      report(le32(3, msg, 3, 0x33333333, 0x11111111, 0x22222222, 0x44444444)),
      report(le32(...CALLS.map((c) => c[4]))),
    ]);
    expect(w.counters()).toMatchObject({ sends: 0, reports: 2 });
  });

  it('RECV: whole frames in order; one longer than the buffer is dropped with -1; a blocked module wakes', () => {
    const w = booted();
    w.deliver(
      mod(`start:  RECV 0x1000, 64, 0
        cmp eax, SYSCALL_ERROR
        jz .error
        REPORT 0x1000, eax
        jmp start
.error: st [0x800], eax
        REPORT 0x800, 4
        jmp start`),
    );
    w.settle();
    const f1 = ether(NODE, PEER, ETHERTYPE_IPV4, bytes('one', new Array(30).fill(1)));
    const f2 = ether(NODE, PEER, ETHERTYPE_IPV4, new Uint8Array(64 - 14 + 1).fill(2)); // 65 bytes
    const f3 = ether(NODE, PEER, 0x9000, bytes('three'));
    const runt = Uint8Array.of(1, 2, 3);
    w.receive([f1, f2, f3, runt]);
    w.settle();
    expect(w.sent).toEqual([report(f1), report(le32(-1)), report(f3), report(runt)]);
    expect(w.counters()).toMatchObject({ received: 5, queued: 4, dropped: 1, reports: 4 });
  });

  it('a module that reads loses nothing to a burst longer than the ring: the rest waits in the NIC', () => {
    const w = booted();
    w.deliver(
      mod(`start:  RECV 0x1000, 64, 0
        REPORT 0x1000, eax
        jmp start`),
    );
    w.settle();
    const burst = Array.from({ length: 60 }, (_, i) => ether(NODE, PEER, 0x9000, Uint8Array.of(i, i, i)));
    w.receive(burst);
    w.settle();
    expect(w.sent).toEqual(burst.map(report));
    expect(w.counters()).toMatchObject({ queued: 60, dropped: 0, reports: 60 });
  });

  it('the kernel queues 32 data frames for a module that does not read; more are dropped, and a new module starts empty', () => {
    const w = booted();
    const spinner = mod(`start:  jmp start`);
    w.deliver(spinner);
    w.runFor(3 * SLICE);
    w.since();
    const frames = Array.from({ length: 40 }, (_, i) => ether(NODE, PEER, 0x9000, Uint8Array.of(i)));
    w.receive(frames);
    w.runFor(3 * SLICE);
    expect(w.counters()).toMatchObject({ received: 41, queued: NODEOS.ringSlots, dropped: 8 });
    // The reader that replaces it finds nothing queued.
    const reader = mod(`start:  RECV 0x1000, 64, RECV_NOWAIT
        st [0x800], eax
        REPORT 0x800, 4
        EXIT 0`);
    w.deliver(reader);
    w.settle();
    expect(w.since()).toBe(
      `nodeos: module replaced\n${loadedLines(reader)}nodeos: module exited (code 0)\n${WAITING}`,
    );
    expect(w.sent).toEqual([report(le32(0))]);
    expect(w.counters()).toMatchObject({ queued: 32, dropped: 40 });
  });
});

describe('nodeos faults', () => {
  // Each module faults at `bad`: the kernel reports the vector and EIP, unloads it, and the next
  // one loads. [setup, the faulting instruction, vector]
  const FAULTS: [setup: string, bad: string, vector: number][] = [
    ['', 'cli', 13],
    ['', 'hlt', 13],
    ['', 'lgdt [0]', 13],
    ['', 'mov cr0, eax', 13],
    ['', 'out 0x3F8, eax', 13],
    ['', 'in eax, 0x300', 13],
    ['', 'int 0x23', 13],
    ['', 'int 0x40', 13],
    ['', 'int3', 13],
    ['', 'ld eax, [USER_SIZE]', 13],
    ['', 'ld eax, [USER_SIZE - 3]', 13],
    ['', 'st [cs:0], eax', 13],
    ['mov eax, 0x10', 'mov ds, eax', 13],
    ['', 'jmpf 0x08:0', 13],
    ['', 'jmp USER_SIZE', 13],
    ['mov esp, 0', 'push eax', 12],
    ['', 'popf', 12],
    ['mov eax, 5', 'divu eax, 0', 0],
    ['', '.dword 0, 0', 6],
  ];

  it('a fault in ring 3 ends the module, not the kernel; the next module loads and runs', () => {
    const w = booted();
    FAULTS.forEach(([setup, insn, vector], i) => {
      const image = mod(`start:  nop
        nop
        ${setup}
bad:    ${insn}
        EXIT 99`);
      const eip = decodeImage(image).symbols.get('bad')!;
      w.deliver(image);
      w.settle();
      expect(w.since(), insn).toBe(
        `${loadedLines(image)}nodeos: module fault ${vector} at 0x${eip.toString(16)}\n${WAITING}`,
      );
      expect(w.counters().faults, insn).toBe(i + 1);
    });
    // The last dword of the segment is the module's: no fault there.
    const edge = mod(`start:  ld eax, [USER_SIZE - 4]
        st [USER_SIZE - 4], eax
        EXIT 5`);
    w.deliver(edge);
    w.settle();
    expect(w.since()).toBe(`${loadedLines(edge)}nodeos: module exited (code 5)\n${WAITING}`);
    expect(w.counters()).toMatchObject({ loaded: FAULTS.length + 1, faults: FAULTS.length, exits: 1 });
    expect(w.ve.stats().qpt).toBe(true);
  });
});
