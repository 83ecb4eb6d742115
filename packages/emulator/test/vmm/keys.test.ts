/**
 * The machine key in NVRAM (claim 29, KEY-1..4, KEY-10) and the key trap (KEY-6..9, claims 40-41,
 * TB-12, ATK-18), with guest code calling the key address and a key-server party behind the
 * transport.
 */
import {
  type AuthorityTriple,
  createMemoryKeyServerStore,
  generateTriple,
  KeyServer,
  type Name,
  nodeBackend,
  type Outbound,
  seededRandom,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { memoryNvramBackend, NVRAM_PORT, NVRAM_STATUS } from '../../src/devices/nvram.js';
import { createMachine } from '../../src/machine.js';
import { KEY_ADDRESS } from '../../src/vmm/keytrap.js';
import { installMachineKey, MACHINE_KEY_AT } from '../../src/vmm/machinekey.js';
import type { VirtualEnvironment, VmmEvent } from '../../src/vmm/ve.js';
import { Vmm } from '../../src/vmm/vmm.js';
import { guestRom, timerSetup } from './guest.js';

const T0 = Date.UTC(2026, 10, 27);
const backend = nodeBackend;
const provision = seededRandom('keys-test/provision');
const MACHINE = generateTriple(backend, provision, 'anc1.machines.example' as Name);
const KS1 = generateTriple(backend, provision, 'ks1.example' as Name);
// A machine key whose first byte prints: the claim-29 program shows what each ring read.
const PRINTABLE_KEY = { sign: new Uint8Array(32).fill(0x4b), open: new Uint8Array(32).fill(0x6b) };

function nvramWithKey(key = MACHINE.key, name = MACHINE.name): Uint8Array {
  return installMachineKey(new Uint8Array(256), name, key);
}

describe('the machine key in NVRAM (claim 29)', () => {
  // On the bare real machine with IOPL 1: ring 0 reads the key byte, ring 1 (through a gate from
  // ring 3) too; rings 2 and 3 fault (#GP, "!0D") on the very first NVRAM port access.
  const read = `mov eax, ${MACHINE_KEY_AT + 64}
        out 0x70, eax
        in eax, 0x71
        out 0x3F8, eax
.spin:  jmp .spin`;
  const toRing3 = `push 0x43
        push 0xB000
        push 0x1002
        push 0x3B
        push ring3
        iret`;
  const programs: [string, string][] = [
    ['ring 0', `main: ${read}`],
    ['ring 1', `main: ${toRing3}\nring3: callf 0x50:0\nr1_entry: ${read}`],
    ['ring 2', `main: ${toRing3}\nring3: callf 0x58:0\nr2_entry: ${read}`],
    ['ring 3', `main: ${toRing3}\nring3: ${read}`],
  ];
  for (const [ring, main] of programs) {
    it(`${ring} ${ring === 'ring 0' || ring === 'ring 1' ? 'reads it' : 'faults'}`, () => {
      const nvram = installMachineKey(new Uint8Array(256), 'm.example' as Name, PRINTABLE_KEY);
      const m = createMachine({ rom: guestRom({ main }), clock: () => T0, nvram: memoryNvramBackend(nvram) });
      m.run(20_000);
      // Byte 64 of the record is the first byte of Key-M.
      expect(m.console.transcript()).toBe(ring === 'ring 2' || ring === 'ring 3' ? '!0D\n' : 'K');
    });
  }

  it('the VMM reads it once at boot and hides it: afterwards even ring 0 reads zeros and cannot write it', () => {
    const vmm = new Vmm({ clock: () => T0, nvram: memoryNvramBackend(nvramWithKey()) });
    const m = vmm.bootMachineKey(backend);
    expect(m.name).toBe(MACHINE.name);
    expect(m.clef).toEqual(MACHINE.clef);
    const io = vmm.machine.io;
    io.write(0x70 + NVRAM_PORT.INDEX, MACHINE_KEY_AT + 64);
    expect(io.read(0x70 + NVRAM_PORT.DATA)).toBe(0);
    expect(io.read(0x70 + NVRAM_PORT.STATUS)).toBe(NVRAM_STATUS.HIDDEN);
    io.write(0x70 + NVRAM_PORT.DATA, 0x55);
    expect(io.read(0x70 + NVRAM_PORT.STATUS)).toBe(NVRAM_STATUS.WRITE_REFUSED);
    // A ring-1 task of this core may have the triple; anything else may not.
    const dtm = vmm.core.register('dtm', 1);
    expect(vmm.machineKey(dtm).key).toEqual(MACHINE.key);
    const forged = { ...dtm };
    expect(() => vmm.machineKey(forged)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => new Vmm({ clock: () => T0 }).bootMachineKey(backend)).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: 'no machine key is installed in NVRAM (or it is hidden until reset)',
      }),
    );
  });

  it("a VE's NVRAM accesses reach its own NVRAM, never the machine's", () => {
    const vmm = new Vmm({ clock: () => T0, nvram: memoryNvramBackend(nvramWithKey()) });
    const own = new Uint8Array(256);
    own.set(new TextEncoder().encode('mine'), MACHINE_KEY_AT);
    const ve = vmm.createVe({
      name: 'v',
      memoryBytes: 1 << 20,
      nvram: memoryNvramBackend(own),
      rom: guestRom({
        main: `main:   mov ecx, 4
        mov eax, ${MACHINE_KEY_AT}
        out 0x70, eax
.l:     in eax, 0x72
        out 0x3F8, eax
        dec ecx
        jnz .l
        hlt`,
      }),
    });
    vmm.run(ve.id, 100_000);
    expect(ve.vm.console.transcript()).toBe('mine');
    expect(ve.stats().trapsByCause['#GP out']).toBe(5);
  });
});

/** A VMM with the machine key booted, KServ1 behind a transport, and VEs that call the key address. */
function keyWorld(opts: { policy?: 'reuse' | 'fresh'; async?: boolean; registerMachine?: boolean } = {}) {
  const events: VmmEvent[] = [];
  let now = T0;
  const clock = () => now;
  const vmm = new Vmm({
    clock: () => T0,
    nvram: memoryNvramBackend(nvramWithKey()),
    onEvent: (e) => events.push(e),
  });
  vmm.bootMachineKey(backend);
  const ks1 = new KeyServer({
    triple: KS1,
    backend,
    random: seededRandom('keys-test/ks1'),
    clock: () => T0,
    store: createMemoryKeyServerStore(),
    serves: ['clef', 'mint'],
    nameOwnership: { policy: 'owner-only' },
  });
  if (opts.registerMachine ?? true) ks1.register({ name: MACHINE.name, clef: MACHINE.clef });
  const queue: Outbound[] = [];
  const wire: Outbound[] = [];
  const service = vmm.startKeyService({
    keyServer: { name: KS1.name, clef: KS1.clef, scopes: ['clef', 'mint'] },
    transport: (f) => {
      wire.push(f);
      queue.push(f);
      if (!opts.async) deliver();
    },
    backend,
    random: seededRandom('keys-test/machine'),
    clock,
    ...(opts.policy === undefined ? {} : { policy: opts.policy }),
  });
  const deliver = () => {
    while (queue.length > 0) {
      const f = queue.shift()!;
      for (const back of ks1.receive(f.bytes).send) service.receive(back.bytes);
    }
  };
  return {
    vmm,
    ks1,
    service,
    events,
    wire,
    deliver,
    advance(ms: number) {
      now += ms;
    },
  };
}

/**
 * A guest that calls the key address from virtual ring 0 (`calls` times, buffers at 0x30000,
 * 0x30200, ...), printing the status digit after each, then once from virtual ring 3.
 */
function callerRom(calls = 1, size = 256): Uint8Array {
  // Ring 3 may not print: it leaves the status for ring 0 to print.
  const one = (i: number, ring3 = false) => `mov edi, ${0x30000 + i * 0x200}
        mov ecx, ${size}
        mov eax, ${KEY_ADDRESS}
        call eax
        add eax, '0'
        ${ring3 ? 'st [0x2F000], eax' : 'out 0x3F8, eax'}`;
  return guestRom({
    main: `main:   ${Array.from({ length: calls }, (_, i) => one(i)).join('\n        ')}
        push 0x43
        push 0xB000
        push 0x2
        push 0x3B
        push ring3
        iret
ring3:  mov eax, 0x43
        mov ds, eax
        ${one(calls, true)}
        callf 0x60:0
r0_entry:
        mov eax, 0x10
        mov ds, eax
        ld eax, [0x2F000]
        out 0x3F8, eax
        PUTC '.'
        hlt`,
  });
}

function handed(ve: VirtualEnvironment, i: number): { key: Uint8Array; clef: Uint8Array; name: string } {
  const at = 0x30000 + i * 0x200;
  const ram = ve.vm.phys.ram;
  return {
    key: ram.slice(at, at + 64),
    clef: ram.slice(at + 64, at + 128),
    name: new TextDecoder().decode(ram.subarray(at + 129, at + 129 + ram[at + 128]!)),
  };
}

function holds(hay: Uint8Array, needle: Uint8Array): boolean {
  for (let i = hay.indexOf(needle[0]!); i >= 0; i = hay.indexOf(needle[0]!, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return true;
  }
  return false;
}

const keyBytes = (t: Pick<AuthorityTriple, 'key'>) => Uint8Array.from([...t.key.sign, ...t.key.open]);

describe('the key trap (KEY-6..9, TB-12)', () => {
  it('a call to the key address gets a limited-use key from KServ1, as if returned by the address; the other VE sees nothing', () => {
    const w = keyWorld();
    const a = w.vmm.createVe({
      name: 'a',
      memoryBytes: 1 << 20,
      rom: callerRom(),
      keyTrap: { name: 've-a.anc1.example' as Name },
    });
    const b = w.vmm.createVe({
      name: 'b',
      memoryBytes: 1 << 20,
      rom: callerRom(0),
      keyTrap: { name: 've-b.anc1.example' as Name },
    });
    w.vmm.run(a.id, 200_000);
    expect(a.vm.console.transcript()).toBe('00.');
    const entry = w.vmm.keys.get('a')!;
    expect(entry).toMatchObject({ ve: 'a', name: 've-a.anc1.example', version: 1 });
    expect(handed(a, 0)).toEqual({
      key: keyBytes(entry),
      clef: Uint8Array.from([...entry.clef.sign, ...entry.clef.seal]),
      name: 've-a.anc1.example',
    });
    // ATK-18: the ring-3 process of the same VE got the same key.
    expect(handed(a, 1)).toEqual(handed(a, 0));
    expect(w.service.requests).toBe(1);
    expect(a.stats().keyCalls).toBe(2);
    // KEY-7: one request went to KServ1, sealed to it, secured by Key-M: no key bytes on the wire.
    expect(w.wire.map((f) => [f.to, f.step])).toEqual([[KS1.name, 'VEKEY-REQ']]);
    // KEY-10: the machine key is in no VE's memory; CRYPT-14: VE b never sees a's key.
    w.vmm.run(b.id, 200_000);
    for (const ve of [a, b]) expect(holds(ve.vm.phys.ram, keyBytes(MACHINE))).toBe(false);
    expect(holds(b.vm.phys.ram, keyBytes(entry))).toBe(false);
    expect(
      w.events
        .filter((e) => e.kind === 'key-trap')
        .map((e) => e.kind === 'key-trap' && [e.ve, e.phase, e.ring, e.status]),
    ).toEqual([
      [a.id, 'call', 0, undefined],
      [a.id, 'answer', 0, 0],
      [a.id, 'call', 3, undefined],
      [a.id, 'answer', 3, 0],
      [b.id, 'call', 3, undefined],
      [b.id, 'answer', 3, 0],
    ]);
  });

  it("policy 'fresh' (ATK-18's other branch) and rotation (KEY-9) issue a new key that replaces the old", () => {
    const w = keyWorld({ policy: 'fresh' });
    const a = w.vmm.createVe({
      name: 'a',
      memoryBytes: 1 << 20,
      rom: callerRom(2),
      keyTrap: { name: 've-a.anc1.example' as Name },
    });
    w.vmm.run(a.id, 300_000);
    expect(a.vm.console.transcript()).toBe('000.');
    expect(w.service.requests).toBe(3);
    expect(w.vmm.keys.get('a')!.version).toBe(3);
    expect(handed(a, 0).key).not.toEqual(handed(a, 1).key);
    expect(handed(a, 2).key).toEqual(keyBytes(w.vmm.keys.get('a')!));

    // KEY-9: rotated after its first key, the VE's next call gets a new one, the call after that
    // keeps it (policy reuse).
    const r = keyWorld();
    const off = r.vmm.keys.onInstall((e) => {
      if (e.version === 1) r.service.rotate('b');
    });
    const b = r.vmm.createVe({
      name: 'b',
      memoryBytes: 1 << 20,
      rom: callerRom(2),
      keyTrap: { name: 've-b.anc1.example' as Name },
    });
    r.vmm.run(b.id, 300_000);
    off();
    expect(b.vm.console.transcript()).toBe('000.');
    expect(r.service.requests).toBe(2);
    expect(r.vmm.keys.get('b')!.version).toBe(2);
    expect(handed(b, 0).key).not.toEqual(handed(b, 1).key);
    expect(handed(b, 2).key).toEqual(handed(b, 1).key);
  });

  it('with an asynchronous transport the calling VE waits, its time passing, until the answer comes', () => {
    const w = keyWorld({ async: true });
    const a = w.vmm.createVe({
      name: 'a',
      memoryBytes: 1 << 20,
      rom: callerRom(1),
      keyTrap: { name: 've-a.anc1.example' as Name },
    });
    const r1 = w.vmm.run(a.id, 50_000);
    expect(r1.reason).toBe('budget');
    expect(a.vm.console.transcript()).toBe('');
    w.vmm.run(a.id, 50_000);
    expect(w.service.requests).toBe(1);
    w.deliver();
    w.vmm.run(a.id, 200_000);
    expect(a.vm.console.transcript()).toBe('00.');
  });

  it('a refused request returns status 2, a too-small buffer status 1; no key is written', () => {
    const w = keyWorld({ registerMachine: false });
    const a = w.vmm.createVe({
      name: 'a',
      memoryBytes: 1 << 20,
      rom: callerRom(1),
      keyTrap: { name: 've-a.anc1.example' as Name },
    });
    w.vmm.run(a.id, 200_000);
    // KServ1 does not know this machine: it answers with an error; both calls fail.
    expect(a.vm.console.transcript()).toBe('22.');
    expect(w.service.requests).toBe(2);

    // No answer at all (the frames are lost): the request times out after 30 s and fails.
    const t = keyWorld({ async: true });
    const c = t.vmm.createVe({
      name: 'c',
      memoryBytes: 1 << 20,
      rom: callerRom(0),
      keyTrap: { name: 've-c.anc1.example' as Name },
    });
    t.vmm.run(c.id, 200_000);
    expect(c.vm.console.transcript()).toBe('');
    t.advance(29_999);
    t.vmm.run(c.id, 200_000);
    expect(c.vm.console.transcript()).toBe('');
    t.advance(1);
    t.vmm.run(c.id, 200_000);
    expect(c.vm.console.transcript()).toBe('2.');
    expect(w.vmm.keys.get('a')).toBeUndefined();

    const s = keyWorld();
    const b = s.vmm.createVe({
      name: 'b',
      memoryBytes: 1 << 20,
      rom: callerRom(1, 16),
      keyTrap: { name: 've-b.anc1.example' as Name },
    });
    s.vmm.run(b.id, 200_000);
    expect(b.vm.console.transcript()).toBe('11.');
    expect(handed(b, 0).key).toEqual(new Uint8Array(64));
  });

  it('a call from an interrupt handler is the key trap too, with the interrupt lookahead on or off', () => {
    // The timer's handler calls the key address; the VMM runs the handler on the virtual CPU after
    // delivering the interrupt (interruptLookahead) and must stop at the fetch from the empty bus,
    // which natively is the key trap. KServ1 refuses this machine: status 2.
    const rom = guestRom({
      main: `
main:
${timerSetup(50)}
        sti
.spin:  jmp .spin
tick:   mov edi, 0x30000
        mov ecx, 256
        mov eax, ${KEY_ADDRESS}
        call eax
        add eax, '0'
        out 0x3F8, eax
        cli
        hlt`,
    });
    for (const interruptLookahead of [16, 0]) {
      const w = keyWorld({ registerMachine: false });
      const ve = w.vmm.createVe({
        name: 'a',
        memoryBytes: 1 << 20,
        rom,
        interruptLookahead,
        keyTrap: { name: 've-a.anc1.example' as Name },
      });
      w.vmm.run(ve.id, 100_000);
      expect([ve.vm.console.transcript(), ve.stats().keyCalls, w.service.requests]).toEqual(['2', 1, 1]);
    }
  });

  it('the key address must be on the empty bus of the VE', () => {
    const w = keyWorld();
    expect(() =>
      w.vmm.createVe({
        name: 'a',
        memoryBytes: 1 << 20,
        rom: callerRom(),
        keyTrap: { name: 'x.example' as Name, address: 0x1000 },
      }),
    ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
