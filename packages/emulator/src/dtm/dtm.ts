/**
 * The data transfer manager (DTM-1..14, claims 1, 21-23): the one path by which anything moves
 * between a virtual environment and another, or the outside. It is a task of the real environment
 * registered with the core at real ring 1 (TB-7), written, like the VMM, in TypeScript beside the
 * emulated CPU: a guest reaches it only through its own virtual NIC, whose transmissions the VMM
 * hands to the DTM and nowhere else, and it reaches a guest only by queueing a frame on that
 * guest's NIC. No guest can name, address or bypass it (docs/dtm.md).
 *
 * **Ports.** Each attached NIC is a port with a name, a medium (DTM-8: `ethernet` or a `modem`
 * link, frame.ts), and either a place on this DTM's local hub (Fig. 9A, CFG-9) or a channel to a
 * single peer (Fig. 9B, CFG-10). The gateway (gateway.ts) is the port named `outside` (DTM-5).
 * Several DTMs sharing one spool can be linked (Fig. 9C, CFG-11): a transfer to a port of another
 * DTM is written to the shared spool, owned by that DTM, and announced to it by a core message.
 *
 * **Policy.** A port reaches only the ports in its `reach` list, and accepts only senders in its
 * `accept` list; a channel port accepts only its peer. An ethernet sender must use its own NIC's
 * address as source (the DTM refuses forged ones). Refusals are dropped and reported, never
 * delivered.
 *
 * **Modes** (DTM-10, TRADE-2; per port, and a transfer takes the stricter of its ends): `pass`
 * (routed, translated and checked, frame by frame, nothing spooled), `spool` (each transaction is
 * kept in the spool until it is whole, scanned by the pluggable scanner, then delivered whole;
 * DTM-6, DTM-7). The third, fastest choice of TRADE-2, `direct` (DTM-11), bypasses the DTM
 * altogether: `Gateway.attachDirect`.
 *
 * **Confirmation** (DTM-9, claims 23 and 28): a port's `confirm` holds its outgoing transfers (all
 * of them, or only those to `outside`) in the spool until `approve` or `reject`, or until the hold
 * timeout's action. Everything in the spool is durable: a DTM opened again over the same spool area
 * finds its held, quarantined and undelivered transfers where they were.
 *
 * **Stream encryption** (Fig. 12A, CFG-18, claims 34/38): a port's `stream` seals each of its
 * frames after routing and policy, once per receiver, before anything is spooled or sent on, and
 * opens each frame for it just before its NIC queues it (stream.ts). What the spool, the events and
 * the other ports see of such a stream is ciphertext.
 */
import type { NicEvents } from '../devices/nic.js';
import type { Core, TaskHandle } from '../vmm/core.js';
import { VmmError } from '../vmm/errors.js';
import {
  buildFrame,
  ETHERTYPE_TRANSACTION,
  formatMac,
  isBroadcast,
  type Medium,
  type Packet,
  parseFrame,
  sameMac,
  transactionHeader,
} from './frame.js';
import { decodeRecord, encodeRecord, type TransferRecord, type TransferState } from './record.js';
import type { Spool } from './spool.js';

/** `direct` (DTM-11) is the gateway's business, not the DTM's: see `Gateway.attachDirect`. */
export type DtmMode = 'pass' | 'spool';
export type Confirm = 'none' | 'outside' | 'all';
/** The gateway's port name. */
export const OUTSIDE = 'outside';
/** The core message port on which linked DTMs announce handed-over transfers. */
export const DTM_CORE_PORT = 0xd7;

const MODE_RANK: Record<DtmMode, number> = { pass: 1, spool: 2 };
const NO_MAC = new Uint8Array(6);
const ANY = '*';

/**
 * What the DTM uses of a VE's NIC: a `Nic`, or the VM manager's filter 94 around one (stream.ts's
 * `streamFilter`, Fig. 12B).
 */
export interface NicLink {
  readonly mac: Uint8Array;
  readonly queueCapacity: number;
  readonly queued: number;
  on(event: 'transmit', listener: (frame: NicEvents['transmit']) => void): () => void;
  receive(frame: Uint8Array): boolean;
}

/**
 * Stream encryption applied by the DTM for one port (Fig. 12A): stream.ts's `Stream`. Each answers
 * the packet to carry on with, or why the frame is dropped.
 */
export interface PortStream {
  /** A packet from the port, sealed for the receiving port `to` (its name; its or the packet's address). */
  seal(pkt: Packet, to: { readonly port: string; readonly mac: Uint8Array }): Packet | string;
  /** A packet for the port, opened; `from` is the sending port and the packet's source address. */
  open(pkt: Packet, from: { readonly port: string; readonly mac: Uint8Array }): Packet | string;
}

export interface PortOptions {
  /** Unique among linked DTMs; `outside` is the gateway's. */
  readonly name: string;
  /** The VE's virtual NIC (its address is the port's), or filter 94 around it. */
  readonly nic: NicLink;
  /** What the VE sees (default `ethernet`). */
  readonly medium?: Medium;
  /** A channel to this one peer port (Fig. 9B) instead of a place on the hub (Fig. 9A). */
  readonly channel?: string;
  /** Default `spool`. */
  readonly mode?: DtmMode;
  /** Port names it may send to (default any). */
  readonly reach?: readonly string[] | '*';
  /** Port names it accepts transfers from (default any). */
  readonly accept?: readonly string[] | '*';
  /** Which of its outgoing transfers wait for a person's confirmation (default none). */
  readonly confirm?: Confirm;
  /** Stream encryption by the DTM (CFG-18): its frames leave sealed, frames for it are opened. */
  readonly stream?: PortStream;
}

/** What the DTM reads of the gateway (gateway.ts implements it). */
export interface GatewayLink {
  /** The gateway's address towards the VEs: where hub frames to unknown addresses go. */
  readonly mac: Uint8Array;
  /** The outside address frames from a modem channel are sent to. */
  readonly upstream: Uint8Array;
  /** Sends an ethernet frame out of the machine. */
  transmit(frame: Uint8Array): void;
}

export interface GatewayPortOptions {
  readonly reach?: readonly string[] | '*';
  readonly accept?: readonly string[] | '*';
  readonly mode?: DtmMode;
}

/** A transaction as the scanner sees it. */
export interface ScanInput {
  readonly from: string;
  readonly to: readonly string[];
  readonly type: number;
  /** Each frame's payload (for a multi-frame transaction, after the 8-byte fragment header). */
  readonly payloads: readonly Uint8Array[];
}

/** Inspects a whole transaction (DTM-10); returns why it is refused, or undefined when clean. */
export type Scanner = (t: ScanInput) => string | undefined;

export interface HoldTimeout {
  readonly afterMs: number;
  readonly action: 'approve' | 'reject';
}

export interface DtmOptions {
  readonly name: string;
  /** 1..65535, unique among DTMs sharing a spool: the owner stamp of its spool records. */
  readonly id: number;
  readonly core: Core;
  readonly spool: Spool;
  readonly clock: () => number;
  readonly scanner?: Scanner;
  /** What happens to a held transfer nobody decides (default: held until decided). */
  readonly holdTimeout?: HoldTimeout;
  /** An incomplete transaction is dropped this long after its first frame (default 30 s). */
  readonly assemblyTimeoutMs?: number;
  /** Largest transaction (default 64 frames). */
  readonly maxTransactionFrames?: number;
  /**
   * The port that takes hub frames to addresses no port has (default: the gateway, `outside`): a
   * firewall's inside port makes it the hub's way out.
   */
  readonly uplink?: string;
  readonly onEvent?: (e: DtmEvent) => void;
}

export type DtmAction =
  | 'delivered'
  | 'dropped'
  | 'spooled'
  | 'held'
  | 'approved'
  | 'rejected'
  | 'expired'
  | 'flagged'
  | 'handed-over'
  | 'waiting';

/** A transfer event (TB-2). */
export interface DtmEvent {
  readonly kind: 'dtm';
  readonly dtm: string;
  readonly action: DtmAction;
  readonly from: string;
  readonly to?: string;
  /** The spool record, when there is one. */
  readonly id?: number;
  readonly frames: number;
  readonly bytes: number;
  readonly reason?: string;
}

/** A spooled transfer as listed by {@link Dtm.transfers} (the hold queue is those `held`). */
export interface TransferInfo {
  readonly id: number;
  readonly state: TransferState;
  readonly from: string;
  readonly to: readonly string[];
  readonly frames: number;
  readonly bytes: number;
  readonly created: number;
  readonly decided: number;
  readonly reason: string;
}

export interface DtmStats {
  readonly delivered: number;
  readonly deliveredBytes: number;
  readonly dropped: number;
  readonly spooled: number;
  readonly held: number;
  readonly flagged: number;
}

interface Port {
  readonly name: string;
  readonly dtm: Dtm;
  readonly nic: NicLink | undefined;
  readonly gateway: GatewayLink | undefined;
  readonly mac: Uint8Array;
  readonly medium: Medium;
  readonly channel: string | undefined;
  readonly mode: DtmMode;
  readonly reach: ReadonlySet<string> | undefined;
  readonly accept: ReadonlySet<string> | undefined;
  readonly confirm: Confirm;
  readonly stream: PortStream | undefined;
  unsubscribe: () => void;
}

/** Who frames come from, as `send` needs it: a port, or a spooled record's sender. */
interface Sender {
  readonly name: string;
  readonly mac: Uint8Array;
  readonly medium: Medium;
  readonly channel: string | undefined;
}

interface Live {
  record: TransferRecord;
  /** Key of an assembling transaction: `from\ntxid`. */
  readonly assembly: string | undefined;
}

/** A spool record id: the owner DTM in the high bits, a sequence in the low 32. */
const ID_SPAN = 2 ** 32;

export class Dtm {
  readonly name: string;
  readonly id: number;
  /** Its core task: ring 1. */
  readonly task: TaskHandle;
  private readonly opts: DtmOptions;
  private readonly spool: Spool;
  private readonly ports = new Map<string, Port>();
  private readonly peers = new Set<Dtm>();
  private readonly live = new Map<number, Live>();
  private readonly assembling = new Map<string, number>();
  private seq = 0;
  private readonly counts = { delivered: 0, deliveredBytes: 0, dropped: 0, spooled: 0, held: 0, flagged: 0 };

  constructor(opts: DtmOptions) {
    if (!Number.isInteger(opts.id) || opts.id < 1 || opts.id > 0xffff) {
      throw new VmmError('CONFIG_INVALID', `a DTM id is 1..65535, not ${opts.id}`);
    }
    this.opts = opts;
    this.name = opts.name;
    this.id = opts.id;
    this.spool = opts.spool;
    this.task = opts.core.register(`dtm:${opts.name}`, 1);
    this.load();
  }

  /** Attaches a VE's NIC as a port (its transmissions come here from now on). */
  attach(o: PortOptions): void {
    this.checkName(o.name);
    if (o.name === OUTSIDE) throw new VmmError('CONFIG_INVALID', `'${OUTSIDE}' is the gateway's port`);
    const medium = o.medium ?? 'ethernet';
    if (medium !== 'ethernet' && medium !== 'modem') {
      throw new VmmError('CONFIG_INVALID', `unknown medium ${String(medium)}`);
    }
    if (medium === 'modem' && o.channel === undefined) {
      throw new VmmError('CONFIG_INVALID', `port ${o.name}: a modem link is a channel to one peer`);
    }
    const port: Port = {
      name: o.name,
      dtm: this,
      nic: o.nic,
      gateway: undefined,
      mac: o.nic.mac,
      medium,
      channel: o.channel,
      mode: checkMode(o.mode ?? 'spool'),
      reach: nameSet(o.reach),
      accept: nameSet(o.accept),
      confirm: o.confirm ?? 'none',
      stream: o.stream,
      unsubscribe: () => {},
    };
    port.unsubscribe = o.nic.on('transmit', (frame) => this.admitFrame(port, frame));
    this.ports.set(o.name, port);
  }

  /** Attaches the gateway as the port `outside`; `receive` of gateway.ts calls {@link fromOutside}. */
  attachGateway(gateway: GatewayLink, o: GatewayPortOptions = {}): void {
    this.checkName(OUTSIDE);
    this.ports.set(OUTSIDE, {
      name: OUTSIDE,
      dtm: this,
      nic: undefined,
      gateway,
      mac: gateway.mac,
      medium: 'ethernet',
      channel: undefined,
      mode: checkMode(o.mode ?? 'pass'),
      reach: nameSet(o.reach),
      accept: nameSet(o.accept),
      confirm: 'none',
      stream: undefined,
      unsubscribe: () => {},
    });
  }

  /** Removes a port; its spooled transfers stay (delivered if it comes back). */
  detach(name: string): void {
    const p = this.ports.get(name);
    if (p === undefined) return;
    p.unsubscribe();
    this.ports.delete(name);
  }

  /** Links two DTMs sharing one spool (Fig. 9C): each can then route to the other's ports. */
  link(other: Dtm): void {
    if (other.spool !== this.spool) {
      throw new VmmError('CONFIG_INVALID', `DTMs ${this.name} and ${other.name} do not share a spool`);
    }
    if (other.id === this.id) throw new VmmError('CONFIG_INVALID', `two DTMs with id ${this.id}`);
    this.peers.add(other);
    other.peers.add(this);
  }

  /** A frame from outside the machine, from the gateway's driver. */
  fromOutside(frame: Uint8Array): void {
    const port = this.ports.get(OUTSIDE);
    if (port === undefined) throw new VmmError('BAD_STATE', `DTM ${this.name} has no gateway`);
    this.admitFrame(port, frame);
  }

  /**
   * A frame from a port. A full spool refuses it (dropped with the reason): a sender that fills the spool, e.g. with transfers held for
   * confirmation, cannot make the DTM throw into the guest that transmitted.
   */
  private admitFrame(src: Port, frame: Uint8Array): void {
    try {
      this.ingress(src, frame);
    } catch (e) {
      if (!(e instanceof VmmError) || e.code !== 'SPOOL_FULL') throw e;
      // Nothing was stored; a transaction this frame belonged to expires unfinished.
      this.drop(src.name, undefined, frame, 'spool full');
    }
  }

  /**
   * The DTM's turn (the VMM runs it between VE slices): transfers handed over by linked DTMs,
   * delivery of what waits (a full receive queue), hold and assembly timeouts.
   */
  service(): void {
    for (let m = this.task.recv(DTM_CORE_PORT); m !== undefined; m = this.task.recv(DTM_CORE_PORT)) {
      if (m.bytes.length !== 8) continue;
      const id = new DataView(m.bytes.buffer, m.bytes.byteOffset).getFloat64(0);
      this.adopt(id);
    }
    const now = this.opts.clock();
    const assemblyTimeout = this.opts.assemblyTimeoutMs ?? 30_000;
    for (const [id, l] of [...this.live]) {
      const r = l.record;
      if (r.state === 'ready') this.deliver(id, l);
      else if (r.state === 'assembling' && now - r.created >= assemblyTimeout) {
        this.discard(id, l, 'expired', 'incomplete transaction');
      } else if (r.state === 'held' && this.opts.holdTimeout !== undefined) {
        const t = this.opts.holdTimeout;
        if (now - r.decided >= t.afterMs) {
          if (t.action === 'approve') this.approve(id, 'timeout');
          else this.decide(id, 'expired', 'hold timed out');
        }
      }
    }
  }

  /** The spooled transfers this DTM owns, oldest first; `held` ones are the hold queue. */
  transfers(state?: TransferState): TransferInfo[] {
    const out: TransferInfo[] = [];
    for (const [id, { record: r }] of this.live) {
      if (state !== undefined && r.state !== state) continue;
      out.push({
        id,
        state: r.state,
        from: r.from,
        to: r.targets,
        frames: r.frames.length,
        bytes: r.frames.reduce((n, f) => n + f.length, 0),
        created: r.created,
        decided: r.decided,
        reason: r.reason,
      });
    }
    return out.sort((a, b) => a.created - b.created || a.id - b.id);
  }

  /** The frames of a spooled transfer (for a person deciding on a hold). */
  frames(id: number): readonly Uint8Array[] {
    const l = this.live.get(id);
    if (l === undefined) throw new VmmError('DTM_BAD_HOLD', `no spooled transfer ${id}`, { id });
    return l.record.frames.map((f) => f.slice());
  }

  /** Lets a held transfer go (DTM-9): it is delivered now, or as soon as its receivers have room. */
  approve(id: number, by = 'person'): void {
    const l = this.held(id);
    this.put(id, l, { ...l.record, state: 'ready', reason: '' });
    this.emit('approved', l.record, undefined, by, id);
    this.deliver(id, l);
  }

  /** Refuses a held transfer: it is deleted from the spool, never delivered. */
  reject(id: number, reason = 'rejected by a person'): void {
    this.held(id);
    this.decide(id, 'rejected', reason);
  }

  stats(): DtmStats {
    return { ...this.counts };
  }

  // --- the path of a frame -------------------------------------------------------------------

  private ingress(src: Port, frame: Uint8Array): void {
    const pkt = parseFrame(src.medium, frame);
    if (typeof pkt === 'string') {
      this.drop(src.name, undefined, frame, pkt);
      return;
    }
    if (src.medium === 'ethernet' && src.nic !== undefined && !sameMac(pkt.src!, src.mac)) {
      this.drop(src.name, undefined, frame, `forged source ${formatMac(pkt.src!)}`);
      return;
    }
    const targets = this.route(src, pkt, frame);
    if (targets.length === 0) return;
    if (src.stream === undefined) {
      this.admit(src, targets, pkt, frame);
      return;
    }
    // CFG-18: sealed after routing and policy, one copy per receiver (each its own session).
    for (const t of targets) {
      const mac = t.nic !== undefined ? t.mac : (pkt.dst ?? t.gateway!.upstream);
      const s = src.stream.seal(pkt, { port: t.name, mac });
      if (typeof s === 'string') {
        this.drop(src.name, t.name, frame, s);
        continue;
      }
      const sealed = buildFrame(src.medium, s.type, s.payload, pkt.dst, pkt.src);
      if (typeof sealed === 'string') this.drop(src.name, t.name, frame, sealed);
      else this.admit(src, [t], s, sealed);
    }
  }

  /** A routed frame: sent on (pass), or spooled, scanned, held and delivered whole (spool). */
  private admit(src: Port, targets: readonly Port[], pkt: Packet, frame: Uint8Array): void {
    let mode = MODE_RANK[src.mode];
    for (const t of targets) mode = Math.max(mode, MODE_RANK[t.mode]);
    const hold =
      src.confirm === 'all' || (src.confirm === 'outside' && targets.some((t) => t.name === OUTSIDE));
    if (mode < MODE_RANK.spool && !hold) {
      for (const t of targets) {
        if (!this.send(src, t, [frame])) {
          this.drop(src.name, t.name, frame, 'receive queue full');
        }
      }
      return;
    }
    let txid = 0;
    let seq = 0;
    let last = true;
    if (pkt.type === ETHERTYPE_TRANSACTION) {
      const h = transactionHeader(pkt.payload);
      if (h === undefined) {
        this.drop(src.name, undefined, frame, 'short transaction header');
        return;
      }
      txid = h.txid;
      seq = h.seq;
      last = h.last;
    }
    const names = targets.map((t) => t.name);
    let id: number;
    let l: Live;
    const key = txid === 0 && last && seq === 0 ? undefined : `${src.name}\n${txid}`;
    const open = key === undefined ? undefined : this.assembling.get(key);
    if (open !== undefined) {
      l = this.live.get(open)!;
      id = open;
      const r = l.record;
      if (seq !== r.frames.length || names.join('\n') !== r.targets.join('\n')) {
        this.discard(id, l, 'dropped', `fragment ${seq} out of order or to other receivers`);
        return;
      }
      if (r.frames.length + 1 > (this.opts.maxTransactionFrames ?? 64)) {
        this.discard(id, l, 'dropped', 'transaction too long');
        return;
      }
      l.record = { ...r, frames: [...r.frames, frame] };
    } else {
      if (seq !== 0) {
        this.drop(src.name, undefined, frame, `fragment ${seq} of no transaction`);
        return;
      }
      id = this.newId();
      l = {
        record: {
          state: 'assembling',
          medium: src.medium,
          owner: this.id,
          txid,
          created: this.opts.clock(),
          decided: 0,
          from: src.name,
          reason: '',
          targets: names,
          frames: [frame],
        },
        assembly: key,
      };
      if (key !== undefined) this.assembling.set(key, id);
    }
    if (!last) {
      this.put(id, l, l.record);
      return;
    }
    if (key !== undefined) this.assembling.delete(key);
    this.counts.spooled++;
    const r = l.record;
    if (mode === MODE_RANK.spool && this.opts.scanner !== undefined) {
      const why = this.opts.scanner({
        from: r.from,
        to: r.targets,
        type: pkt.type,
        payloads: r.frames.map((f) => payloadOf(r.medium, f, txid !== 0)),
      });
      if (why !== undefined) {
        this.counts.flagged++;
        this.put(id, l, { ...r, state: 'quarantined', decided: this.opts.clock(), reason: why });
        this.emit('flagged', l.record, undefined, why, id);
        return;
      }
    }
    if (hold) {
      this.counts.held++;
      this.put(id, l, { ...r, state: 'held', decided: this.opts.clock(), reason: `confirm ${src.confirm}` });
      this.emit('held', l.record, undefined, l.record.reason, id);
      return;
    }
    // Whole and clean: it goes on at once. The spool keeps it only when a receiver cannot take it
    // now (a transaction of several frames is there already, from its assembly).
    l.record = { ...r, state: 'ready' };
    this.live.set(id, l);
    this.emit('spooled', l.record, undefined, undefined, id);
    this.deliver(id, l);
  }

  /** The ports a packet goes to, after policy; refusals are reported. */
  private route(src: Port, pkt: Packet, frame: Uint8Array): Port[] {
    let candidates: Port[];
    if (src.channel !== undefined) {
      const peer = this.find(src.channel);
      if (peer === undefined) {
        this.drop(src.name, src.channel, frame, 'channel peer not attached');
        return [];
      }
      candidates = [peer];
    } else if (src.gateway !== undefined || isBroadcast(pkt.dst!)) {
      // From outside: to the port with that address; a broadcast: every hub port but the sender.
      if (!isBroadcast(pkt.dst!)) {
        const p = this.findByMac(pkt.dst!);
        if (p === undefined) {
          this.drop(src.name, formatMac(pkt.dst!), frame, 'no such address');
          return [];
        }
        candidates = [p];
      } else {
        candidates = [...this.ports.values()].filter(
          (p) => p !== src && p.channel === undefined && p.gateway === undefined,
        );
      }
    } else {
      const p = this.findByMac(pkt.dst!) ?? this.find(this.opts.uplink ?? OUTSIDE);
      if (p === undefined) {
        this.drop(src.name, formatMac(pkt.dst!), frame, 'no such address');
        return [];
      }
      candidates = [p];
    }
    const out: Port[] = [];
    for (const t of candidates) {
      const why = refusal(src, t);
      if (why === undefined) out.push(t);
      else this.drop(src.name, t.name, frame, why);
    }
    return out;
  }

  /**
   * Delivers a sender's frames to one port, translated to its medium (the source address of a
   * modem sender's frames is its NIC's); false when the receiver's queue lacks room for all.
   */
  private send(sender: Sender, t: Port, frames: readonly Uint8Array[]): boolean {
    const out: Uint8Array[] = [];
    const { name: from, mac: srcMac, medium: srcMedium } = sender;
    const viaChannel = sender.channel !== undefined;
    // A stream is opened once per frame: a receiver without room is not tried (its replay window
    // would take a later try for a replay).
    if (t.stream !== undefined && t.nic!.queueCapacity - t.nic!.queued < frames.length) return false;
    for (const f of frames) {
      let pkt = parseFrame(srcMedium, f);
      if (typeof pkt === 'string') continue; // checked on the way in
      if (t.stream !== undefined) {
        const opened = t.stream.open(pkt, { port: from, mac: pkt.src ?? srcMac });
        if (typeof opened === 'string') {
          this.drop(from, t.name, f, opened);
          continue;
        }
        pkt = opened;
      }
      // A hub frame keeps its destination (the addressee, a broadcast, or the far end of an
      // uplink), and so does an ethernet channel's frame to the gateway; otherwise a channel's
      // frames go to its peer, whatever they say, and a modem's to the gateway's upstream.
      const dst =
        pkt.dst === undefined
          ? t.gateway !== undefined
            ? t.gateway.upstream
            : t.mac
          : viaChannel && t.gateway === undefined
            ? t.mac
            : pkt.dst;
      const built = buildFrame(t.medium, pkt.type, pkt.payload, dst, pkt.src ?? srcMac);
      if (typeof built === 'string') {
        this.drop(from, t.name, f, built);
        return true;
      }
      out.push(built);
    }
    if (out.length === 0) return true;
    if (t.gateway !== undefined) {
      for (const f of out) t.gateway.transmit(f);
    } else {
      const nic = t.nic!;
      if (nic.queueCapacity - nic.queued < out.length) return false;
      for (const f of out) nic.receive(f);
    }
    const bytes = out.reduce((n, f) => n + f.length, 0);
    this.counts.delivered += out.length;
    this.counts.deliveredBytes += bytes;
    this.opts.onEvent?.({
      kind: 'dtm',
      dtm: this.name,
      action: 'delivered',
      from,
      to: t.name,
      frames: out.length,
      bytes,
    });
    return true;
  }

  /** Delivers a ready record to every target it still has (or hands them to their DTMs). */
  private deliver(id: number, l: Live): void {
    const r = l.record;
    const left: string[] = [];
    const port = this.find(r.from);
    const sender: Sender = {
      name: r.from,
      mac: port?.mac ?? NO_MAC,
      medium: r.medium,
      channel: port?.channel,
    };
    for (const name of r.targets) {
      const t = this.find(name);
      if (t === undefined) {
        left.push(name);
        continue;
      }
      if (t.dtm !== this) {
        t.dtm.handOver(this, { ...r, targets: [name], owner: t.dtm.id });
        this.emit('handed-over', r, name, t.dtm.name, id);
        continue;
      }
      // More frames than the receiver's whole queue: it would never fit, and waiting for room
      // would hold back every later transfer to that receiver for good.
      if (t.gateway === undefined && t.nic !== undefined && r.frames.length > t.nic.queueCapacity) {
        this.counts.dropped++;
        this.emit(
          'dropped',
          r,
          name,
          `${r.frames.length} frames never fit ${name}'s receive queue of ${t.nic.queueCapacity}`,
          id,
        );
        continue;
      }
      // Per receiver, ready transfers go in the order they entered the DTM (their ids): one that
      // waits for room holds back the later ones (a smaller one would otherwise overtake it, and a receiver that checks
      // order, like the hardened profile's push order, would refuse the older one).
      if (this.waitingBefore(id, name)) {
        left.push(name);
        continue;
      }
      if (!this.send(sender, t, r.frames)) {
        left.push(name);
        this.emit('waiting', r, name, 'receive queue full', id);
      }
    }
    if (left.length === 0) this.remove(id);
    else if (left.length !== r.targets.length || !this.spool.has(id))
      this.put(id, l, { ...r, targets: left });
  }

  /** Is a transfer older than `id` still waiting to be delivered to port `name`? */
  private waitingBefore(id: number, name: string): boolean {
    for (const [other, l] of this.live) {
      if (other < id && l.record.state === 'ready' && l.record.targets.includes(name)) return true;
    }
    return false;
  }

  /** Another DTM's transfer for one of this DTM's ports: into the shared spool, then a core message. */
  private handOver(from: Dtm, r: TransferRecord): void {
    const id = this.newId();
    this.spool.put(id, encodeRecord(r));
    const msg = new Uint8Array(8);
    new DataView(msg.buffer).setFloat64(0, id);
    from.task.send(this.task.id, DTM_CORE_PORT, msg);
  }

  /** Takes a handed-over record from the spool. */
  private adopt(id: number): void {
    const bytes = this.spool.get(id);
    if (bytes === undefined) return;
    const r = decodeRecord(bytes);
    if (typeof r === 'string' || r.owner !== this.id) return;
    this.live.set(id, { record: r, assembly: undefined });
  }

  // --- spool bookkeeping ---------------------------------------------------------------------

  /** Loads the records this DTM owns (after a restart). */
  private load(): void {
    const lo = this.id * ID_SPAN;
    for (const id of this.spool.ids()) {
      if (id >= lo && id < lo + ID_SPAN) this.seq = Math.max(this.seq, id - lo);
      const bytes = this.spool.get(id)!;
      const r = decodeRecord(bytes);
      if (typeof r === 'string') {
        if (id >= lo && id < lo + ID_SPAN) {
          this.opts.onEvent?.({
            kind: 'dtm',
            dtm: this.name,
            action: 'dropped',
            from: '?',
            id,
            frames: 0,
            bytes: bytes.length,
            reason: `unreadable spool record: ${r}`,
          });
        }
        continue;
      }
      if (r.owner !== this.id) continue;
      const key = r.state === 'assembling' ? `${r.from}\n${r.txid}` : undefined;
      this.live.set(id, { record: r, assembly: key });
      if (key !== undefined) this.assembling.set(key, id);
    }
  }

  private newId(): number {
    this.seq++;
    if (this.seq >= ID_SPAN) throw new VmmError('LIMIT_EXCEEDED', `DTM ${this.name} ran out of spool ids`);
    return this.id * ID_SPAN + this.seq;
  }

  private put(id: number, l: Live, r: TransferRecord): void {
    this.spool.put(id, encodeRecord(r));
    l.record = r;
    this.live.set(id, l);
  }

  private remove(id: number): void {
    const l = this.live.get(id);
    if (l?.assembly !== undefined && this.assembling.get(l.assembly) === id)
      this.assembling.delete(l.assembly);
    this.live.delete(id);
    this.spool.delete(id);
  }

  private held(id: number): Live {
    const l = this.live.get(id);
    if (l === undefined || l.record.state !== 'held') {
      throw new VmmError('DTM_BAD_HOLD', `no held transfer ${id}`, { id });
    }
    return l;
  }

  private decide(id: number, action: 'rejected' | 'expired', reason: string): void {
    const l = this.live.get(id)!;
    this.remove(id);
    this.emit(action, l.record, undefined, reason, id);
  }

  private discard(id: number, l: Live, action: 'dropped' | 'expired', reason: string): void {
    this.remove(id);
    this.counts.dropped++;
    this.emit(action, l.record, undefined, reason, id);
  }

  private drop(from: string, to: string | undefined, frame: Uint8Array, reason: string): void {
    this.counts.dropped++;
    this.opts.onEvent?.({
      kind: 'dtm',
      dtm: this.name,
      action: 'dropped',
      from,
      ...(to === undefined ? {} : { to }),
      frames: 1,
      bytes: frame.length,
      reason,
    });
  }

  private emit(
    action: DtmAction,
    r: TransferRecord,
    to: string | undefined,
    reason: string | undefined,
    id: number,
  ): void {
    const cb = this.opts.onEvent;
    if (cb === undefined) return;
    cb({
      kind: 'dtm',
      dtm: this.name,
      action,
      from: r.from,
      ...(to === undefined ? { to: r.targets.join(',') } : { to }),
      id,
      frames: r.frames.length,
      bytes: r.frames.reduce((n, f) => n + f.length, 0),
      ...(reason === undefined ? {} : { reason }),
    });
  }

  private checkName(name: string): void {
    if (typeof name !== 'string' || name.length === 0 || name.length > 64 || name === ANY) {
      throw new VmmError('CONFIG_INVALID', `bad port name ${JSON.stringify(name)}`);
    }
    for (const d of [this, ...this.peers]) {
      if (d.ports.has(name)) throw new VmmError('CONFIG_INVALID', `port ${name} is already attached`);
    }
  }

  private find(name: string): Port | undefined {
    const p = this.ports.get(name);
    if (p !== undefined) return p;
    for (const d of this.peers) {
      const q = d.ports.get(name);
      if (q !== undefined && q.gateway === undefined) return q;
    }
    return undefined;
  }

  private findByMac(mac: Uint8Array): Port | undefined {
    for (const d of [this, ...this.peers]) {
      for (const p of d.ports.values()) if (p.nic !== undefined && sameMac(p.mac, mac)) return p;
    }
    return undefined;
  }
}

/** Why `src` may not send to `t`, or undefined. */
function refusal(src: Port, t: Port): string | undefined {
  if (t === src) return 'to itself';
  if (src.reach !== undefined && !src.reach.has(t.name)) return `${src.name} may not reach ${t.name}`;
  if (t.accept !== undefined && !t.accept.has(src.name)) return `${t.name} does not accept ${src.name}`;
  if (t.channel !== undefined && t.channel !== src.name) return `${t.name} is a channel to ${t.channel}`;
  return undefined;
}

function nameSet(list: readonly string[] | '*' | undefined): ReadonlySet<string> | undefined {
  if (list === undefined || list === ANY) return undefined;
  if (!Array.isArray(list))
    throw new VmmError('CONFIG_INVALID', 'reach and accept are lists of port names or "*"');
  return new Set(list);
}

function checkMode(mode: DtmMode): DtmMode {
  if (mode !== 'pass' && mode !== 'spool') {
    throw new VmmError('CONFIG_INVALID', `unknown DTM mode ${String(mode)}`);
  }
  return mode;
}

function payloadOf(medium: Medium, frame: Uint8Array, fragment: boolean): Uint8Array {
  const p = parseFrame(medium, frame);
  if (typeof p === 'string') return new Uint8Array(0);
  return fragment ? p.payload.subarray(8) : p.payload;
}
