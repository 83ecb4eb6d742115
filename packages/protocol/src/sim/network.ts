/**
 * An in-memory network for transport-free parties: frames are queued and delivered in order to the
 * party registered under the addressee Name. Every frame in flight passes the `tap`, the hook an
 * attack script uses to record, drop, replace or inject (TB-1) without touching any party.
 */
import { ProtocolError } from '../errors.js';
import type { Name } from '../names.js';
import type { Delivery, Outcome } from '../parties/core.js';
import type { ProtocolEvent, Step } from '../parties/events.js';

export interface Endpoint {
  receive(bytes: Uint8Array): Outcome;
}

/** One frame on the wire. */
export interface InFlight {
  readonly seq: number;
  readonly from: Name;
  readonly to: Name;
  readonly step: Step | 'INJECTED';
  readonly bytes: Uint8Array;
}

/** What the tap does with a frame: pass it, drop it, or deliver other bytes instead. */
export type TapVerdict = 'pass' | 'drop' | Uint8Array;
export type Tap = (frame: InFlight) => TapVerdict;

export interface NetworkOptions {
  /** Stop after this many deliveries in one `run()` (default 10 000): a guard against loops. */
  readonly maxDeliveries?: number;
  /**
   * Keep every frame in `wire`, every event in `events` and every delivery in `deliveries`
   * (default true). Benchmarks turn it off so that the record does not grow with the run.
   */
  readonly record?: boolean;
}

export class MemoryNetwork {
  /** Every frame that entered the network, in order, whatever the tap did with it. */
  readonly wire: InFlight[] = [];
  /** Every event of every party, in order. */
  readonly events: ProtocolEvent[] = [];
  /** What each party handed to its host, in order. */
  readonly deliveries: { readonly party: Name; readonly delivery: Delivery }[] = [];
  /** Errors parties reported, in order. */
  readonly errors: { readonly party: Name; readonly error: ProtocolError }[] = [];
  tap: Tap = () => 'pass';
  private readonly endpoints = new Map<Name, Endpoint>();
  private readonly queue: InFlight[] = [];
  private seq = 0;
  private readonly maxDeliveries: number;
  private readonly record: boolean;
  private readonly listeners: ((party: Name, d: Delivery) => void)[] = [];

  constructor(opts: NetworkOptions = {}) {
    this.maxDeliveries = opts.maxDeliveries ?? 10_000;
    this.record = opts.record ?? true;
  }

  attach(name: Name, endpoint: Endpoint): void {
    this.endpoints.set(name, endpoint);
  }

  detach(name: Name): void {
    this.endpoints.delete(name);
  }

  /** Called for every delivery as it happens (hosts install keys, start applications, ...). */
  onDeliver(listener: (party: Name, d: Delivery) => void): void {
    this.listeners.push(listener);
  }

  /** Takes the result of an operation of `party`: queues its frames, records its events. */
  post(party: Name, outcome: Outcome): Outcome {
    if (this.record) this.events.push(...outcome.events);
    if (outcome.error !== undefined) this.errors.push({ party, error: outcome.error });
    for (const d of outcome.deliver) {
      if (this.record) this.deliveries.push({ party, delivery: d });
      for (const l of this.listeners) l(party, d);
    }
    for (const o of outcome.send)
      this.enqueue({ seq: this.seq++, from: party, to: o.to, step: o.step, bytes: o.bytes });
    return outcome;
  }

  /** Puts attacker bytes on the wire as if sent by `from`. */
  inject(from: Name, to: Name, bytes: Uint8Array): void {
    this.enqueue({ seq: this.seq++, from, to, step: 'INJECTED', bytes });
  }

  /** Delivers queued frames until none is left. Returns how many were delivered. */
  run(): number {
    let n = 0;
    while (this.queue.length > 0) {
      if (n >= this.maxDeliveries) {
        throw new ProtocolError('LIMIT_EXCEEDED', `more than ${this.maxDeliveries} deliveries in one run`);
      }
      const f = this.queue.shift()!;
      const verdict = this.tap(f);
      if (verdict === 'drop') continue;
      const bytes = verdict === 'pass' ? f.bytes : verdict;
      const endpoint = this.endpoints.get(f.to);
      if (endpoint === undefined) continue; // nobody there: lost, as on a real network
      this.post(f.to, endpoint.receive(bytes));
      n++;
    }
    return n;
  }

  private enqueue(f: InFlight): void {
    if (this.record) this.wire.push(f);
    this.queue.push(f);
  }
}
