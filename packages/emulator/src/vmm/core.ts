/**
 * The core beside the VM manager in real ring 0 (CORE-1..10): the few services every privileged
 * task of the real environment uses. Memory allocation (CORE-4) is `PagePool` and the VMM's
 * portions, VE creation and scheduling (CORE-6, CORE-9) are the `Vmm`; this file holds:
 *
 * - **handlers** for the real machine's interrupt lines and the first-level dispatch to them
 *   (CORE-5, CORE-10, DEV-3): `installHandler(line, fn)`, `dispatch()` acknowledges each pending
 *   line of the real PIC and calls its handler (an unhandled line is counted and dropped);
 * - **critical sections** (CORE-8): `critical(fn)` runs `fn` with dispatch held off; lines raised
 *   meanwhile are dispatched when the outermost section ends;
 * - **messaging** between real-environment tasks (CORE-7, TB-7): a task is registered with its
 *   real ring, and only rings 0 and 1 may register; `send(dst, port, bytes)` / `recv(port)` go
 *   through the task's handle, which carries its id, so the core stamps the true sender and no task
 *   can forge another's. Messages are bounded in size and queued per (task, port), each queue
 *   bounded too. Guest code in a VE has no handle: it cannot reach the core at all.
 */
import { PIC_PORT, type Pic } from '../devices/pic.js';
import { VmmError } from './errors.js';

/** A message as received: the sender the core stamped, and the bytes. */
export interface CoreMessage {
  readonly src: number;
  readonly srcName: string;
  readonly port: number;
  readonly bytes: Uint8Array;
}

export interface CoreLimits {
  /** Largest message, in bytes (default 64 KiB). */
  readonly maxMessage: number;
  /** Messages a (task, port) queue holds before `send` is refused (default 64). */
  readonly maxQueue: number;
}

export const DEFAULT_CORE_LIMITS: CoreLimits = { maxMessage: 64 * 1024, maxQueue: 64 };

/** What a registered task may do with the core: the only way to send or receive. */
export interface TaskHandle {
  readonly id: number;
  readonly name: string;
  readonly ring: 0 | 1;
  /** Queues `bytes` (copied) for task `dst` on `port`; throws LIMIT_EXCEEDED or VMM_BAD_VE. */
  send(dst: number, port: number, bytes: Uint8Array): void;
  /** The oldest message for this task on `port`, or undefined. */
  recv(port: number): CoreMessage | undefined;
}

export class Core {
  private readonly handlers = new Map<number, (line: number) => void>();
  private readonly tasks = new Map<
    number,
    { name: string; ring: 0 | 1; queues: Map<number, CoreMessage[]> }
  >();
  private nextTask = 1;
  private readonly issued = new WeakSet<TaskHandle>();
  private depth = 0;
  /** Lines dispatched to a handler, and lines no handler was installed for. */
  dispatched = 0;
  unhandled = 0;

  constructor(
    /** The real machine's interrupt controller. */
    private readonly pic: Pic,
    private readonly limits: CoreLimits = DEFAULT_CORE_LIMITS,
  ) {}

  /** Installs the handler of real interrupt line `line` (0..15), replacing any (CORE-5). */
  installHandler(line: number, handler: (line: number) => void): void {
    if (!Number.isInteger(line) || line < 0 || line > 15) {
      throw new VmmError('CONFIG_INVALID', `interrupt line ${line} is not 0..15`);
    }
    this.handlers.set(line, handler);
  }

  removeHandler(line: number): void {
    this.handlers.delete(line);
  }

  /**
   * First-level dispatch (CORE-10): every line pending at the real PIC, in its priority order, is
   * acknowledged, ended and handed to its handler. Held off inside a critical section. Returns the
   * number of lines dispatched.
   */
  dispatch(): number {
    if (this.depth > 0) return 0;
    let n = 0;
    const pic = this.pic;
    const base = pic.ports[0];
    for (let vector = pic.pending(); vector >= 0; vector = pic.pending()) {
      pic.acknowledge(vector);
      const line = vector - pic.read(base + PIC_PORT.VECTOR_BASE);
      pic.write(base + PIC_PORT.EOI, 0);
      const h = this.handlers.get(line);
      if (h === undefined) this.unhandled++;
      else {
        this.dispatched++;
        h(line);
      }
      n++;
    }
    return n;
  }

  /** Runs `fn` with interrupt dispatch held off (CORE-8); pending lines are dispatched after. */
  critical<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      this.depth--;
      if (this.depth === 0) this.dispatch();
    }
  }

  get inCritical(): boolean {
    return this.depth > 0;
  }

  /** Registers a real-environment task of ring 0 or 1 (TB-7: no other ring may use messaging). */
  register(name: string, ring: number): TaskHandle {
    if (ring !== 0 && ring !== 1) {
      throw new VmmError(
        'CONFIG_INVALID',
        `only ring 0 and ring 1 tasks may use core messaging, not ring ${ring}`,
      );
    }
    const id = this.nextTask++;
    const task = { name, ring: ring as 0 | 1, queues: new Map<number, CoreMessage[]>() };
    this.tasks.set(id, task);
    const core = this;
    const handle: TaskHandle = {
      id,
      name,
      ring: task.ring,
      send(dst, port, bytes) {
        core.deliver(id, dst, port, bytes);
      },
      recv(port) {
        return core.tasks.get(id)?.queues.get(port)?.shift();
      },
    };
    this.issued.add(handle);
    return handle;
  }

  /** Whether `handle` is a live task handle this core issued (a look-alike object is not). */
  owns(handle: TaskHandle): boolean {
    return this.issued.has(handle) && this.tasks.has(handle.id);
  }

  /** Removes a task; its queued messages are dropped. */
  unregister(handle: TaskHandle): void {
    this.tasks.delete(handle.id);
  }

  private deliver(src: number, dst: number, port: number, bytes: Uint8Array): void {
    const from = this.tasks.get(src);
    if (from === undefined) throw new VmmError('BAD_STATE', 'this task was unregistered');
    const to = this.tasks.get(dst);
    if (to === undefined) throw new VmmError('VMM_BAD_VE', `no task ${dst}`, { task: dst });
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
      throw new VmmError('CONFIG_INVALID', `port ${port} is not 0..65535`);
    }
    if (bytes.length > this.limits.maxMessage) {
      throw new VmmError(
        'LIMIT_EXCEEDED',
        `a message of ${bytes.length} bytes exceeds ${this.limits.maxMessage}`,
      );
    }
    let q = to.queues.get(port);
    if (q === undefined) {
      q = [];
      to.queues.set(port, q);
    }
    if (q.length >= this.limits.maxQueue) {
      throw new VmmError('LIMIT_EXCEEDED', `the queue of task ${dst} port ${port} is full`);
    }
    q.push({ src, srcName: from.name, port, bytes: bytes.slice() });
  }
}
