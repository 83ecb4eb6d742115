/**
 * The core (CORE-5, CORE-7, CORE-8, CORE-10, TB-7): interrupt handlers and first-level dispatch,
 * critical sections, and messaging between ring-0/1 tasks with the sender stamped by the core.
 */
import { describe, expect, it } from 'vitest';
import { PIC_PORT, Pic } from '../../src/devices/pic.js';
import { Core } from '../../src/vmm/core.js';
import { VmmError } from '../../src/vmm/errors.js';
import { Vmm } from '../../src/vmm/vmm.js';

function unmasked(): Pic {
  const pic = new Pic();
  pic.write(pic.ports[0] + PIC_PORT.MASK, 0);
  return pic;
}

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof VmmError) return e.code;
    throw e;
  }
  return 'ok';
};

describe('interrupt dispatch (CORE-5, CORE-10)', () => {
  it('dispatches pending lines in priority order to their handlers, each acknowledged and ended', () => {
    const pic = unmasked();
    const core = new Core(pic);
    const seen: number[] = [];
    core.installHandler(3, (l) => seen.push(l));
    core.installHandler(0, (l) => seen.push(l));
    pic.raise(3);
    pic.raise(0);
    pic.raise(5); // no handler: counted, dropped
    expect(core.dispatch()).toBe(3);
    expect(seen).toEqual([0, 3]);
    expect([core.dispatched, core.unhandled]).toEqual([2, 1]);
    expect([pic.pending(), pic.read(pic.ports[0] + PIC_PORT.IN_SERVICE)]).toEqual([-1, 0]);
  });

  it('holds dispatch off inside a critical section and dispatches when the outermost one ends (CORE-8)', () => {
    const pic = unmasked();
    const core = new Core(pic);
    const seen: string[] = [];
    core.installHandler(1, () => seen.push('irq'));
    core.critical(() => {
      core.critical(() => {
        pic.raise(1);
        expect(core.dispatch()).toBe(0);
        seen.push('inner');
      });
      seen.push('outer');
    });
    expect(seen).toEqual(['inner', 'outer', 'irq']);
  });

  it('refuses a line outside 0..15', () => {
    expect(code(() => new Core(unmasked()).installHandler(16, () => {}))).toBe('CONFIG_INVALID');
  });

  it('the VMM dispatches real interrupts raised during a VE run to the core handler', () => {
    const vmm = new Vmm({ clock: () => 0, ramBytes: 8 << 20 });
    const seen: number[] = [];
    vmm.core.installHandler(3, (l) => seen.push(l));
    vmm.machine.pic.write(vmm.machine.pic.ports[0] + PIC_PORT.MASK, 0);
    vmm.machine.pic.raise(3);
    const ve = vmm.createVe({ name: 'idle', memoryBytes: 1 << 16, rom: new Uint8Array(16) });
    vmm.run(ve.id, 10);
    expect(seen).toEqual([3]);
  });
});

describe('messaging (CORE-7, TB-7)', () => {
  it('only ring 0 and ring 1 tasks may register', () => {
    const core = new Core(unmasked());
    expect([0, 1, 2, 3].map((ring) => code(() => core.register(`t${ring}`, ring)))).toEqual([
      'ok',
      'ok',
      'CONFIG_INVALID',
      'CONFIG_INVALID',
    ]);
  });

  it('delivers per port, in order, copied, with the true sender stamped by the core', () => {
    const core = new Core(unmasked());
    const vmm = core.register('vmm', 0);
    const dtm = core.register('dtm', 1);
    const bytes = Uint8Array.of(1, 2, 3);
    dtm.send(vmm.id, 7, bytes);
    bytes[0] = 9; // the sender's buffer changes after send: the message does not
    dtm.send(vmm.id, 7, Uint8Array.of(4));
    dtm.send(vmm.id, 8, Uint8Array.of(5));
    expect(vmm.recv(8)).toEqual({ src: dtm.id, srcName: 'dtm', port: 8, bytes: Uint8Array.of(5) });
    expect(vmm.recv(7)).toEqual({ src: dtm.id, srcName: 'dtm', port: 7, bytes: Uint8Array.of(1, 2, 3) });
    expect(vmm.recv(7)?.bytes).toEqual(Uint8Array.of(4));
    expect(vmm.recv(7)).toBeUndefined();
    expect(dtm.recv(7)).toBeUndefined();
  });

  it('bounds message size and queue length, and refuses an unknown destination', () => {
    const core = new Core(unmasked(), { maxMessage: 4, maxQueue: 2 });
    const a = core.register('a', 0);
    const b = core.register('b', 1);
    expect(code(() => a.send(b.id, 1, new Uint8Array(5)))).toBe('LIMIT_EXCEEDED');
    a.send(b.id, 1, new Uint8Array(4));
    a.send(b.id, 1, new Uint8Array(4));
    expect(code(() => a.send(b.id, 1, new Uint8Array(1)))).toBe('LIMIT_EXCEEDED');
    expect(code(() => a.send(99, 1, new Uint8Array(1)))).toBe('VMM_BAD_VE');
    core.unregister(b);
    expect(code(() => a.send(b.id, 1, new Uint8Array(1)))).toBe('VMM_BAD_VE');
    expect(code(() => b.send(a.id, 1, new Uint8Array(1)))).toBe('BAD_STATE');
  });
});
