/**
 * The WebSocket side of a service: takes binary messages from inbound and outbound sockets,
 * runs each through the party inside one store transaction (the caller's), and sends the frames of the outcome
 * where the router says. One binary message is one frame (TB-15); text messages are refused
 * (close 1003); messages over the frame limit never reach this code (ws closes with 1009).
 *
 * A message is handled synchronously from start to end: the party's `receive()` runs inside the
 * store's transaction, the transaction commits, and only then are answers sent, so no answer ever
 * leaves for a change that is not stored (a key server's mint whose transaction fails sends nothing). A peer
 * that misbehaves (garbage, oversize, half a message, silence) affects only its own socket.
 */
import {
  type Clock,
  decodeFrame,
  type ErrorCode,
  type Frame,
  isProtocolError,
  LIMITS,
  type Name,
  type Outcome,
} from '@clefnet/protocol';
import { type RawData, WebSocket } from 'ws';
import { type EventHub, hostErrorEvent, type ServiceEvent } from '../events.js';
import { createLink, type Link } from './link.js';
import { createRouter } from './router.js';

/** Opens every outgoing WebSocket of a service: `(url, peer)` -> socket; point it at a proxy to sit on the hop. */
export type ConnectHook = (url: string, peer: Name) => WebSocket;

/** The default hook: a direct connection, the frame limit as `maxPayload`, no compression. */
export const directConnect: ConnectHook = (url) =>
  new WebSocket(url, { maxPayload: LIMITS.FRAME_MAX_BYTES, perMessageDeflate: false });

/** Something that takes frames: the service's party (`Party.receive`). */
export interface FrameEndpoint {
  receive(bytes: Uint8Array): Outcome;
}

export interface GatewayOptions {
  readonly party: FrameEndpoint;
  /** The store's transaction: a message's changes are stored whole or not at all. */
  readonly transaction: <T>(fn: () => T) => T;
  readonly events: EventHub;
  readonly clock: Clock;
  readonly directory: ReadonlyMap<Name, string>;
  /** Opens the WebSocket for an outgoing hop (a proxy may be put here). */
  readonly connect: ConnectHook;
  /** Ping every socket this often; one that missed the previous ping is terminated. 0: never. */
  readonly heartbeatMs: number;
}

/** The link a message came in on and its routing data, for answers to that message. */
interface Origin {
  readonly link: Link;
  readonly corr: string;
}

export interface Gateway {
  /** Takes an inbound socket (upgraded on /ws). */
  accept(ws: WebSocket, remote: string): void;
  /** Logs and sends what a party operation outside a message produced (register, revoke, expire). */
  dispatch(outcome: Outcome): void;
  /** Open sockets, inbound and outbound. */
  readonly connections: number;
  /** Closes every socket (1001), terminating those that do not finish within `graceMs`. */
  close(graceMs: number): Promise<void>;
}

export function createGateway(opts: GatewayOptions): Gateway {
  const { events, clock } = opts;
  const sockets = new Set<WebSocket>();
  const alive = new WeakMap<WebSocket, boolean>();
  let inbound = 0;
  let outbound = 0;
  const emit = (e: ServiceEvent) => events.emit(e);
  const hostError = (where: string, e: unknown, conn?: string) =>
    emit(hostErrorEvent(clock(), where, e, conn));

  const router = createRouter({
    directory: opts.directory,
    dial: (url, peer) => {
      let ws: WebSocket;
      try {
        ws = opts.connect(url, peer);
      } catch (e) {
        hostError('dial', e);
        return undefined;
      }
      const id = `out-${++outbound}`;
      const link = createLink(ws, id, (bytes, step) =>
        emit({
          type: 'undeliverable',
          at: clock(),
          to: describe(bytes).to ?? '',
          conn: id,
          ...(step === undefined ? {} : { step }),
        }),
      );
      track(ws, link, 'outbound', { peer });
      return link;
    },
  });

  function track(
    ws: WebSocket,
    link: Link,
    direction: 'inbound' | 'outbound',
    who: { remote?: string; peer?: Name },
  ): void {
    sockets.add(ws);
    alive.set(ws, true);
    let failure: string | undefined;
    const opened = () =>
      emit({ type: 'connection', at: clock(), conn: link.id, state: 'open', direction, ...who });
    if (ws.readyState === WebSocket.OPEN) opened();
    else ws.once('open', opened);
    ws.on('pong', () => alive.set(ws, true));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        ws.close(1003, 'binary frames only');
        return;
      }
      handle(link, toBytes(data));
    });
    ws.on('error', (e: Error) => {
      // A peer's protocol fault (oversize 1009, bad opcode) or a failed dial: ws closes the socket.
      // Inbound, it is the peer's problem (told in the close event); outbound, it is ours.
      failure = e.message;
      if (direction === 'outbound') hostError('outbound', e, link.id);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      sockets.delete(ws);
      router.forget(link);
      const why = failure ?? reason.toString('utf8');
      emit({
        type: 'connection',
        at: clock(),
        conn: link.id,
        state: 'closed',
        direction,
        ...who,
        code,
        ...(why === '' ? {} : { reason: why }),
      });
    });
  }

  function handle(link: Link, bytes: Uint8Array): void {
    const info = describe(bytes);
    emit({ type: 'frame', at: clock(), dir: 'in', conn: link.id, bytes: bytes.length, ...info });
    let outcome: Outcome;
    try {
      outcome = opts.transaction(() => opts.party.receive(bytes));
    } catch (e) {
      hostError('receive', e, link.id);
      return;
    }
    dispatch(outcome, { link, corr: info.corr ?? '' });
  }

  function dispatch(outcome: Outcome, origin?: Origin): void {
    for (const event of outcome.events) emit({ type: 'protocol', at: clock(), event });
    // The Name the handled frame claimed (inside its seal): answers to it go back the same way.
    const sender = origin === undefined ? undefined : claimedSender(outcome);
    let answered = false;
    for (const o of outcome.send) {
      const info = describe(o.bytes);
      let link: Link | undefined;
      if (origin !== undefined && sender !== undefined && o.to === sender) {
        link = origin.link;
        answered = true;
      } else {
        link = router.route(o.to, info.corr ?? '');
      }
      if (link?.send(o.bytes, o.step) === true) {
        emit({
          type: 'frame',
          at: clock(),
          dir: 'out',
          conn: link.id,
          bytes: o.bytes.length,
          step: o.step,
          ...info,
        });
      } else {
        emit({ type: 'undeliverable', at: clock(), to: o.to, step: o.step });
      }
    }
    // Accepted but not answered yet (waiting for an upstream Clef, relayed to the ASD): remember
    // where the answer goes. A refused message leaves no route (see router.ts).
    if (origin !== undefined && sender !== undefined && !answered && outcome.error === undefined) {
      router.learn(sender, origin.corr, origin.link);
    }
  }

  const heartbeat =
    opts.heartbeatMs > 0
      ? setInterval(() => {
          for (const ws of sockets) {
            if (alive.get(ws) === false) {
              ws.terminate();
              continue;
            }
            alive.set(ws, false);
            if (ws.readyState === WebSocket.OPEN) ws.ping();
          }
        }, opts.heartbeatMs)
      : undefined;
  heartbeat?.unref();

  return {
    accept(ws, remote) {
      track(ws, createLink(ws, `in-${++inbound}`), 'inbound', { remote });
    },
    dispatch(outcome) {
      dispatch(outcome);
    },
    get connections() {
      return sockets.size;
    },
    async close(graceMs) {
      if (heartbeat !== undefined) clearInterval(heartbeat);
      const all = [...sockets];
      const closed = all.map((ws) =>
        ws.readyState === WebSocket.CLOSED
          ? Promise.resolve()
          : new Promise<void>((r) => ws.once('close', () => r())),
      );
      for (const ws of all) {
        // An outbound link still connecting holds frames already accepted for sending (a `frame
        // out` event was emitted for them): it may open within the grace period, send its queue
        // (the link's own open handler runs first) and close then.
        if (ws.readyState === WebSocket.CONNECTING) ws.once('open', () => ws.close(1001, 'server stopping'));
        else ws.close(1001, 'server stopping');
      }
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((r) => {
        timer = setTimeout(r, graceMs);
      });
      await Promise.race([Promise.all(closed), grace]);
      clearTimeout(timer);
      for (const ws of sockets) ws.terminate();
      await Promise.all(closed);
    },
  };
}

/** Routing data of a frame for logs and routes; `code` when it does not decode. */
function describe(bytes: Uint8Array): {
  kind?: Frame['kind'];
  to?: Frame['to'];
  corr?: string;
  code?: ErrorCode;
} {
  try {
    const f = decodeFrame(bytes);
    return { kind: f.kind, to: f.to, corr: f.corr };
  } catch (e) {
    return isProtocolError(e) ? { code: e.code } : {};
  }
}

/** The Name the party read from the handled frame's envelope (its first `received` event). */
function claimedSender(outcome: Outcome): Name | undefined {
  for (const e of outcome.events) if (e.type === 'received') return e.peer;
  return undefined;
}

function toBytes(data: RawData): Uint8Array {
  // Copied: the party may keep a message (parked while a Clef is looked up) after ws reuses memory.
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  return new Uint8Array(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
}
