/**
 * Stream encryption (CRYPT-11..15, claims 31-39, Fig. 12, TB-10's stream scheme): transfers leaving
 * a virtual environment are sealed outside it and transfers entering it are opened outside it, so
 * what crosses the DTM, its spool and the wire is ciphertext and the plaintext reaches only its VE
 * (claims 32, 36; CRYPT-14). Three places apply it, all with the format and sessions of this file:
 * the DTM (a port's `stream` option, Fig. 12A, CFG-18, claims 34/38), the VM manager's filter 94
 * at the VE's NIC boundary ({@link streamFilter}, Fig. 12B, CFG-19, claims 33/37), and the VE itself
 * through its crypto device (devices/cryptodev.ts, claim 39).
 *
 * **Keys.** A session joins two ends, each a Name with a Clef and a key version. The secret of this
 * end is, by scheme, the real environment's key (`real`: the machine's Key, KEY-1, claims 31/33/34)
 * or the VE's own limited-use key from {@link VeKeys} (`ve`: KEY-5, claims 36-38); the far end's
 * Clef is known by configuration ({@link knownPeer}: a party on another machine; {@link vePeer}:
 * another VE of this machine, followed live through its rotations). Per direction:
 *
 *     prk = HKDF-Extract("clefnet stream v1", X25519(own X25519 secret, peer's X25519 Clef))
 *     key ‖ iv = HKDF-Expand(prk, fields("clefnet stream v1", scheme, sender Name, sender's X25519
 *                Clef, sender version u32, receiver Name, receiver's X25519 Clef, receiver version
 *                u32, key id), 32 + 12)
 *
 * (fields: TB-14's length-prefixed encoding). Both ends compute the same X25519 output, so each
 * derives the other's sending key as its receiving key. The Names keep directions and ends apart
 * even when both ends hold one key (two VEs of one machine under `real`).
 *
 * **Sealed packet** (the payload of an ethernet frame of type {@link ETHERTYPE_SEALED}, or of a
 * modem frame of protocol 0x4A39; the addresses stay in clear for routing):
 *
 * | off | bytes | field                                                                      |
 * |-----|-------|----------------------------------------------------------------------------|
 * | 0   | 1     | format, 1                                                                  |
 * | 1   | 1     | scheme: 1 `real`, 2 `ve`                                                   |
 * | 2   | 4     | sender key version (big-endian; KEY-9)                                     |
 * | 6   | 4     | receiver key version                                                       |
 * | 10  | 8     | key id: random, drawn by the sender for each sending key                   |
 * | 18  | 8     | sequence number, 1, 2, … per key id (big-endian)                           |
 * | 26  | n+16  | ChaCha20-Poly1305(key, nonce, aad = bytes 0..25, type[2] ‖ payload)       |
 *
 * The nonce is iv XOR (4 zero bytes ‖ sequence number), as in TLS 1.3: it is carried by the
 * sequence number rather than as 12 more bytes, and a key never sees the same nonce twice. The key
 * id makes every sending key fresh: a sender that starts again (a DTM restart) draws a new one
 * and cannot repeat a nonce under an old key.
 *
 * **What is dropped** (never delivered; reported as `stream: <reason>`, {@link StreamDropReason}):
 * a frame that is not sealed, a malformed one, one of the other scheme, one under a key version
 * that is no longer current (`rotated-out key version`, KEY-9) or not yet known, one that fails
 * authentication (tampered, or sealed for someone else), one whose sequence number was already
 * accepted (`replayed`) or lies behind the replay window, and one under a key id the receiver has
 * already moved on from (`stale session`). Nothing changes state before authentication succeeds.
 * Replay protection lives in the receiver's memory: across a receiver's restart it is the key
 * rotation (KEY-9) that retires old frames.
 */
import {
  type Clef,
  type CryptoBackend,
  encodeFields,
  type Key,
  type RandomSource,
  utf8,
} from '@clefnet/protocol';
import { Emitter } from '../devices/events.js';
import type { Nic, NicEvents } from '../devices/nic.js';
import { VmmError } from '../vmm/errors.js';
import type { VeKeys } from '../vmm/vekeys.js';
import type { DtmEvent, NicLink } from './dtm.js';
import {
  buildFrame,
  ETHERTYPE_SEALED,
  formatMac,
  isBroadcast,
  type Medium,
  type Packet,
  parseFrame,
  sameMac,
} from './frame.js';

export const SEALED_FORMAT = 1;
/** The clear header, also the AEAD's associated data. */
export const SEALED_HEADER = 26;
export const SEALED_TAG = 16;
/** What sealing adds to the sealed bytes: header and tag (a packet also seals its 2-byte type). */
export const SEALED_OVERHEAD = SEALED_HEADER + SEALED_TAG;
/** A sending key is used for at most this many packets; then the sender needs a new key version. */
export const MAX_SEQUENCE = 2 ** 48;
export const DEFAULT_WINDOW = 1024;
/** Key ids a receiver remembers having moved on from, per peer. */
const RETIRED_IDS = 32;
const LABEL = utf8('clefnet stream v1');
const SCHEME_CODE = { real: 1, ve: 2 } as const;

export type StreamScheme = keyof typeof SCHEME_CODE;

export type StreamDropReason =
  | 'not sealed'
  | 'malformed'
  | 'wrong scheme'
  | 'no key'
  | 'no peer key'
  | 'bad peer key'
  | 'no peer'
  | 'rotated-out key version'
  | 'unknown key version'
  | 'stale session'
  | 'replayed'
  | 'behind window'
  | 'authentication failed'
  | 'sequence exhausted';

/** One end as the other sees it. */
export interface StreamKeyView {
  readonly name: string;
  readonly clef: Clef;
  /** 1, 2, …: bumped by each rotation (KEY-9). */
  readonly version: number;
}

export interface StreamOwnKey extends StreamKeyView {
  readonly key: Key;
}

/** Where this end's key comes from; `current()` is asked at every packet (rotation is live). */
export interface StreamLocal {
  readonly scheme: StreamScheme;
  /** The VE whose key it is (`ve` scheme): a crypto device takes only its own VE's. */
  readonly ve: string | undefined;
  current(): StreamOwnKey | undefined;
}

/** The far end's Clef and version, by configuration. */
export interface StreamRemote {
  current(): StreamKeyView | undefined;
}

/** The real environment's key (claims 31, 33, 34): e.g. the machine triple read at boot (KEY-1). */
export function realKey(o: {
  readonly name: string;
  readonly clef: Clef;
  readonly key: Key;
  readonly version?: number;
}): StreamLocal {
  const k: StreamOwnKey = { name: o.name, clef: o.clef, key: o.key, version: o.version ?? 1 };
  return { scheme: 'real', ve: undefined, current: () => k };
}

/** VE `ve`'s own key (KEY-5, claims 36-39), as the key trap installed it; undefined until it has one. */
export function veKey(keys: VeKeys, ve: string): StreamLocal {
  return { scheme: 've', ve, current: () => keys.get(ve) };
}

/** A far end known by configuration: another machine's real key, or a VE's key announced to us. */
export function knownPeer(o: {
  readonly name: string;
  readonly clef: Clef;
  readonly version?: number;
}): StreamRemote {
  const v: StreamKeyView = { name: o.name, clef: o.clef, version: o.version ?? 1 };
  return { current: () => v };
}

/** Another VE of this machine: its current key, through its rotations. */
export function vePeer(keys: VeKeys, ve: string): StreamRemote {
  return { current: () => keys.get(ve) };
}

export interface StreamSessionOptions {
  readonly backend: CryptoBackend;
  /** Draws the key ids. */
  readonly random: RandomSource;
  readonly local: StreamLocal;
  readonly peer: StreamRemote;
  /** Sequence numbers the receiver tracks behind the highest it accepted (default 1024). */
  readonly window?: number;
}

interface Direction {
  readonly key: Uint8Array;
  readonly iv: Uint8Array;
}

interface Sending extends Direction {
  readonly own: StreamOwnKey;
  readonly peer: StreamKeyView;
  readonly id: Uint8Array;
  seq: number;
}

interface Receiving extends Direction {
  readonly own: StreamOwnKey;
  readonly peer: StreamKeyView;
  readonly id: Uint8Array;
  /** Highest sequence number accepted. */
  top: number;
  /** seen[s % window] for s in (top - window, top]. */
  readonly seen: Uint8Array;
}

/**
 * One pair of ends: seals what this end sends to its peer, opens what the peer sent to it. A
 * failure is a {@link StreamDropReason}, never an exception.
 */
export class StreamSession {
  readonly scheme: StreamScheme;
  /** The VE whose key this end uses (`ve` scheme). */
  readonly ve: string | undefined;
  private readonly backend: CryptoBackend;
  private readonly random: RandomSource;
  private readonly local: StreamLocal;
  private readonly peer: StreamRemote;
  private readonly window: number;
  private readonly nonce = new Uint8Array(12);
  private prk: { own: StreamOwnKey; peer: StreamKeyView; prk: Uint8Array } | undefined;
  private sending: Sending | undefined;
  private receiving: Receiving | undefined;
  private retired: string[] = [];

  constructor(o: StreamSessionOptions) {
    const window = o.window ?? DEFAULT_WINDOW;
    if (!Number.isInteger(window) || window < 64 || window > 65536) {
      throw new RangeError(`a replay window is 64..65536 sequence numbers, not ${window}`);
    }
    this.scheme = o.local.scheme;
    this.ve = o.local.ve;
    this.backend = o.backend;
    this.random = o.random;
    this.local = o.local;
    this.peer = o.peer;
    this.window = window;
  }

  /** `plain` sealed for the peer: header ‖ ciphertext ‖ tag (a fresh array). */
  seal(plain: Uint8Array): Uint8Array | StreamDropReason {
    const own = this.local.current();
    if (own === undefined) return 'no key';
    const peer = this.peer.current();
    if (peer === undefined) return 'no peer key';
    let s = this.sending;
    if (s === undefined || s.own !== own || s.peer !== peer) {
      const prk = this.shared(own, peer);
      if (prk === undefined) return 'bad peer key';
      const id = this.random(8);
      s = { ...this.direction(prk, own, peer, id), own, peer, id, seq: 0 };
      this.sending = s;
    }
    if (s.seq >= MAX_SEQUENCE) return 'sequence exhausted';
    const seq = ++s.seq;
    const out = new Uint8Array(SEALED_OVERHEAD + plain.length);
    const v = new DataView(out.buffer);
    out[0] = SEALED_FORMAT;
    out[1] = SCHEME_CODE[this.scheme];
    v.setUint32(2, own.version);
    v.setUint32(6, peer.version);
    out.set(s.id, 10);
    v.setUint32(18, Math.floor(seq / 0x1_0000_0000));
    v.setUint32(22, seq >>> 0);
    out.set(
      this.backend.aeadSeal(s.key, this.nonceFor(s.iv, seq), out.subarray(0, SEALED_HEADER), plain),
      SEALED_HEADER,
    );
    return out;
  }

  /** The plaintext of what the peer sealed for this end (a fresh array), or why it is refused. */
  open(sealed: Uint8Array): Uint8Array | StreamDropReason {
    if (sealed.length < SEALED_OVERHEAD || sealed[0] !== SEALED_FORMAT) return 'malformed';
    if (sealed[1] !== SCHEME_CODE[this.scheme]) return 'wrong scheme';
    const v = new DataView(sealed.buffer, sealed.byteOffset, SEALED_HEADER);
    const senderVersion = v.getUint32(2);
    const receiverVersion = v.getUint32(6);
    const seq = v.getUint32(18) * 0x1_0000_0000 + v.getUint32(22);
    if (seq === 0 || seq > MAX_SEQUENCE) return 'malformed';
    const own = this.local.current();
    if (own === undefined) return 'no key';
    const peer = this.peer.current();
    if (peer === undefined) return 'no peer key';
    // KEY-9: only the current pair of keys is valid; older versions were rotated out.
    if (receiverVersion !== own.version || senderVersion !== peer.version) {
      return receiverVersion < own.version || senderVersion < peer.version
        ? 'rotated-out key version'
        : 'unknown key version';
    }
    const id = sealed.subarray(10, 18);
    let r = this.receiving;
    const same = r !== undefined && r.own === own && r.peer === peer;
    let fresh: Receiving | undefined;
    if (same && equal(r!.id, id)) {
      if (seq <= r!.top - this.window) return 'behind window';
      if (seq <= r!.top && r!.seen[seq % this.window] === 1) return 'replayed';
    } else {
      if (same && this.retired.includes(hex(id))) return 'stale session';
      const prk = this.shared(own, peer);
      if (prk === undefined) return 'bad peer key';
      const idCopy = id.slice();
      fresh = {
        ...this.direction(prk, peer, own, idCopy),
        own,
        peer,
        id: idCopy,
        top: 0,
        seen: new Uint8Array(this.window),
      };
      r = fresh;
    }
    const plain = this.backend.aeadOpen(
      r!.key,
      this.nonceFor(r!.iv, seq),
      sealed.subarray(0, SEALED_HEADER),
      sealed.subarray(SEALED_HEADER),
    );
    if (plain === null) return 'authentication failed';
    if (fresh !== undefined) {
      // An authentic new key id: the peer started a new sending key and its old one is retired
      // (after a rotation, the ids of the old keys mean nothing: those versions are refused).
      this.retired = same ? [...this.retired.slice(1 - RETIRED_IDS), hex(this.receiving!.id)] : [];
      this.receiving = fresh;
    }
    this.accept(this.receiving!, seq);
    return plain;
  }

  private accept(r: Receiving, seq: number): void {
    const w = this.window;
    if (seq > r.top) {
      const d = seq - r.top;
      if (d >= w) r.seen.fill(0);
      else for (let s = r.top + 1; s < seq; s++) r.seen[s % w] = 0;
      r.top = seq;
    }
    r.seen[seq % w] = 1;
  }

  private shared(own: StreamOwnKey, peer: StreamKeyView): Uint8Array | undefined {
    const c = this.prk;
    if (c !== undefined && c.own === own && c.peer === peer) return c.prk;
    const dh = this.backend.x25519(own.key.open, peer.clef.seal);
    let any = 0;
    for (const b of dh) any |= b;
    if (any === 0) return undefined; // a low-order Clef (RFC 7748 §6.1)
    const prk = this.backend.hkdfExtract(LABEL, dh);
    dh.fill(0);
    this.prk = { own, peer, prk };
    return prk;
  }

  private direction(prk: Uint8Array, from: StreamKeyView, to: StreamKeyView, id: Uint8Array): Direction {
    const info = encodeFields([
      LABEL,
      utf8(this.scheme),
      utf8(from.name),
      from.clef.seal,
      u32(from.version),
      utf8(to.name),
      to.clef.seal,
      u32(to.version),
      id,
    ]);
    const okm = this.backend.hkdfExpand(prk, info, 44);
    return { key: okm.slice(0, 32), iv: okm.slice(32, 44) };
  }

  private nonceFor(iv: Uint8Array, seq: number): Uint8Array {
    const n = this.nonce;
    n.set(iv);
    const hi = Math.floor(seq / 0x1_0000_0000);
    const lo = seq >>> 0;
    n[4]! ^= hi >>> 24;
    n[5]! ^= (hi >>> 16) & 0xff;
    n[6]! ^= (hi >>> 8) & 0xff;
    n[7]! ^= hi & 0xff;
    n[8]! ^= lo >>> 24;
    n[9]! ^= (lo >>> 16) & 0xff;
    n[10]! ^= (lo >>> 8) & 0xff;
    n[11]! ^= lo & 0xff;
    return n;
  }
}

/** A place a packet comes from or goes to: a DTM port name and/or an address. */
export interface StreamEndpoint {
  readonly port?: string;
  readonly mac?: Uint8Array;
}

export interface StreamPeer {
  /** The peer's DTM port (the DTM applier chooses by port first). */
  readonly port?: string;
  /** The peer's address: a VE's NIC, or a party outside the machine. */
  readonly mac?: Uint8Array;
  /** With neither `port` nor `mac`: the default peer (a channel, a modem link, a broadcast). */
  readonly remote: StreamRemote;
}

export interface StreamOptions {
  readonly backend: CryptoBackend;
  readonly random: RandomSource;
  /** This end's key: {@link realKey} or {@link veKey}. */
  readonly local: StreamLocal;
  readonly peers: readonly StreamPeer[];
  readonly window?: number;
  /** Deliver frames that arrive unsealed instead of dropping them (default false: fail closed). */
  readonly acceptPlaintext?: boolean;
}

/**
 * One VE's end of its streams: a session per configured peer. `seal` and `open` work on packets
 * (frame.ts) and answer `stream: <reason>` for what must be dropped.
 */
export class Stream {
  readonly scheme: StreamScheme;
  private readonly peers: readonly { readonly peer: StreamPeer; readonly session: StreamSession }[];
  private readonly acceptPlaintext: boolean;
  /** Where `type ‖ payload` is put together for sealing; wiped after each use. */
  private scratch = new Uint8Array(2048);

  constructor(o: StreamOptions) {
    this.scheme = o.local.scheme;
    this.acceptPlaintext = o.acceptPlaintext ?? false;
    this.peers = o.peers.map((peer) => ({
      peer,
      session: new StreamSession({
        backend: o.backend,
        random: o.random,
        local: o.local,
        peer: peer.remote,
        ...(o.window === undefined ? {} : { window: o.window }),
      }),
    }));
  }

  /** The session with the peer at `at`: by port, else by address, else the default peer. */
  session(at: StreamEndpoint): StreamSession | undefined {
    let byMac: StreamSession | undefined;
    let byDefault: StreamSession | undefined;
    for (const { peer, session } of this.peers) {
      if (at.port !== undefined && peer.port === at.port) return session;
      if (peer.mac !== undefined && at.mac !== undefined && !isBroadcast(at.mac) && sameMac(peer.mac, at.mac))
        byMac ??= session;
      if (peer.port === undefined && peer.mac === undefined) byDefault ??= session;
    }
    return byMac ?? byDefault;
  }

  /** `pkt` sealed for the peer at `to`: same addresses, type {@link ETHERTYPE_SEALED}. */
  seal(pkt: Packet, to: StreamEndpoint): Packet | string {
    const s = this.session(to);
    if (s === undefined) return reason('no peer');
    const n = 2 + pkt.payload.length;
    if (this.scratch.length < n) this.scratch = new Uint8Array(n);
    const plain = this.scratch.subarray(0, n);
    plain[0] = pkt.type >>> 8;
    plain[1] = pkt.type & 0xff;
    plain.set(pkt.payload, 2);
    const sealed = s.seal(plain);
    plain.fill(0);
    if (typeof sealed === 'string') return reason(sealed);
    return { dst: pkt.dst, src: pkt.src, type: ETHERTYPE_SEALED, payload: sealed };
  }

  /** The original packet of a sealed one from the peer at `from`. */
  open(pkt: Packet, from: StreamEndpoint): Packet | string {
    if (pkt.type !== ETHERTYPE_SEALED) return this.acceptPlaintext ? pkt : reason('not sealed');
    const s = this.session(from);
    if (s === undefined) return reason('no peer');
    const plain = s.open(pkt.payload);
    if (typeof plain === 'string') return reason(plain);
    if (plain.length < 2) return reason('malformed');
    return { dst: pkt.dst, src: pkt.src, type: (plain[0]! << 8) | plain[1]!, payload: plain.subarray(2) };
  }
}

export function createStream(o: StreamOptions): Stream {
  return new Stream(o);
}

/** The reason a DTM or filter event gives for a stream drop. */
export function reason(r: StreamDropReason): string {
  return `stream: ${r}`;
}

function u32(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export interface StreamFilterOptions {
  readonly stream: Stream;
  /** The VE whose NIC it wraps (named in events). */
  readonly ve: string;
  /** What the NIC carries (default `ethernet`; the DTM port must say the same). */
  readonly medium?: Medium;
  /** The `dtm` field of its events (default `filter`). */
  readonly name?: string;
  readonly onEvent?: (e: DtmEvent) => void;
}

export interface StreamFilterStats {
  readonly sealed: number;
  readonly opened: number;
  readonly dropped: number;
}

/**
 * Filter 94 (Fig. 12B, CFG-19, claims 33/37): the VM manager's wrapper of a VE's NIC boundary.
 * What the VE transmits is sealed before anyone else sees it, and what arrives for it is opened
 * just before its NIC queues it; the DTM (or the gateway's direct path) is given this object in the
 * NIC's place and only ever handles ciphertext. A frame that cannot be sealed or opened is dropped
 * and reported, never passed on in clear.
 */
export class StreamFilter extends Emitter<NicEvents> implements NicLink {
  readonly mac: Uint8Array;
  private readonly nic: Nic;
  private readonly o: StreamFilterOptions;
  private readonly medium: Medium;
  private readonly unhook: () => void;
  private readonly counts = { sealed: 0, opened: 0, dropped: 0 };

  constructor(nic: Nic, o: StreamFilterOptions) {
    super();
    const medium = o.medium ?? 'ethernet';
    if (medium !== 'ethernet' && medium !== 'modem') {
      throw new VmmError('CONFIG_INVALID', `unknown medium ${String(medium)}`);
    }
    this.nic = nic;
    this.o = o;
    this.medium = medium;
    this.mac = nic.mac;
    this.unhook = nic.on('transmit', (frame) => this.outbound(frame));
  }

  get queueCapacity(): number {
    return this.nic.queueCapacity;
  }

  get queued(): number {
    return this.nic.queued;
  }

  /** A frame for the VE: opened, then queued on its NIC; false when dropped. */
  receive(frame: Uint8Array): boolean {
    const pkt = parseFrame(this.medium, frame);
    const from = typeof pkt === 'string' || pkt.src === undefined ? 'link' : formatMac(pkt.src);
    if (typeof pkt === 'string') return this.drop(from, this.o.ve, frame, pkt);
    const opened = this.o.stream.open(pkt, pkt.src === undefined ? {} : { mac: pkt.src });
    if (typeof opened === 'string') return this.drop(from, this.o.ve, frame, opened);
    const plain = buildFrame(this.medium, opened.type, opened.payload, pkt.dst, pkt.src);
    if (typeof plain === 'string') return this.drop(from, this.o.ve, frame, plain);
    this.counts.opened++;
    return this.nic.receive(plain);
  }

  /** Unhooks it from the NIC. */
  detach(): void {
    this.unhook();
  }

  stats(): StreamFilterStats {
    return { ...this.counts };
  }

  private outbound(frame: Uint8Array): void {
    const pkt = parseFrame(this.medium, frame);
    if (typeof pkt === 'string') {
      this.drop(this.o.ve, undefined, frame, pkt);
      return;
    }
    const to = pkt.dst === undefined ? undefined : formatMac(pkt.dst);
    const sealed = this.o.stream.seal(pkt, pkt.dst === undefined ? {} : { mac: pkt.dst });
    if (typeof sealed === 'string') {
      this.drop(this.o.ve, to, frame, sealed);
      return;
    }
    const out = buildFrame(this.medium, sealed.type, sealed.payload, pkt.dst, pkt.src);
    if (typeof out === 'string') {
      this.drop(this.o.ve, to, frame, out);
      return;
    }
    this.counts.sealed++;
    this.emit('transmit', out);
  }

  private drop(from: string, to: string | undefined, frame: Uint8Array, why: string): false {
    this.counts.dropped++;
    this.o.onEvent?.({
      kind: 'dtm',
      dtm: this.o.name ?? 'filter',
      action: 'dropped',
      from,
      ...(to === undefined ? {} : { to }),
      frames: 1,
      bytes: frame.length,
      reason: why,
    });
    return false;
  }
}

/** Wraps `nic` in filter 94: give the result to the DTM (`attach({ nic: filter })`) in its place. */
export function streamFilter(nic: Nic, o: StreamFilterOptions): StreamFilter {
  return new StreamFilter(nic, o);
}
