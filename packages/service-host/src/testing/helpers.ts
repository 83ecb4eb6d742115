/**
 * Test fixtures every service needs: a manual clock, temp folders, a silent logger, polling, JSON
 * over HTTP, a protocol party connected over real WebSockets, and a pool of ephemeral keys that
 * shows which it handed out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Delivery,
  EphemeralPool,
  type Name,
  nodeBackend,
  type Outbound,
  type Outcome,
  type Party,
  type ProtocolError,
  seededRandom,
} from '@clefnet/protocol';
import { pino } from 'pino';
import { WebSocket } from 'ws';

/** 2026-01-01T00:00:00Z, the reference world's start. */
export const T0 = Date.UTC(2026, 0, 1);

/** A clock that moves only when told (the services and the clients share it). */
export function manualClock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

/** A fresh folder under the OS temp dir, named `<prefix>XXXXXX`. */
export function tempDir(prefix = 'clefnet-service-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const silent = pino({ level: 'silent' });

/** A client party on real WebSockets: frames to a connected Name go on its socket, others are kept. */
export class PartyLink {
  readonly deliveries: Delivery[] = [];
  readonly errors: ProtocolError[] = [];
  readonly unrouted: Outbound[] = [];
  readonly received: Uint8Array[] = [];
  private readonly sockets = new Map<Name, WebSocket>();

  constructor(readonly party: Party) {}

  async connect(name: Name, url: string): Promise<WebSocket> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('message', (data: Buffer) => {
      const bytes = new Uint8Array(data);
      this.received.push(bytes);
      this.post(this.party.receive(bytes));
    });
    this.sockets.set(name, ws);
    return ws;
  }

  post(outcome: Outcome): Outcome {
    this.deliveries.push(...outcome.deliver);
    if (outcome.error !== undefined) this.errors.push(outcome.error);
    for (const o of outcome.send) {
      const ws = this.sockets.get(o.to);
      if (ws === undefined) this.unrouted.push(o);
      else ws.send(o.bytes);
    }
    return outcome;
  }

  close(): void {
    for (const ws of this.sockets.values()) ws.close();
  }
}

/** Waits until `probe` returns something other than undefined (polling; fails after `ms`). */
export async function until<T>(probe: () => T | undefined, ms = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function httpJson(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(url, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}

/**
 * A raw TCP client that performs the WebSocket upgrade on `wsUrl` and then writes whatever a test
 * wants (half a frame, a frame head and no more): a peer that misbehaves below the ws library.
 */
export async function rawWsClient(wsUrl: string): Promise<Socket> {
  const u = new URL(wsUrl);
  const socket = connect(Number(u.port), u.hostname);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(
    `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const head = await new Promise<string>((resolve) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
  });
  const status = head.split('\r\n')[0];
  if (status !== 'HTTP/1.1 101 Switching Protocols') {
    socket.destroy();
    throw new Error(`the upgrade answered ${status}`);
  }
  socket.on('error', () => {});
  return socket;
}

/** The head of a masked binary WebSocket frame announcing `length` (126..65535) payload bytes. */
export function binaryFrameHead(length: number): Uint8Array {
  return Uint8Array.from([0x82, 0x80 | 126, length >> 8, length & 0xff, 1, 2, 3, 4]);
}

/**
 * A full pool of `size` ephemeral key pairs drawn from `seededRandom(seed)`, and every secret it
 * drew, in order (to see which were used, and that each was zeroed).
 */
export function recordingPool(seed: string, size: number): { pool: EphemeralPool; handed: Uint8Array[] } {
  const draw = seededRandom(seed);
  const handed: Uint8Array[] = [];
  const pool = new EphemeralPool(
    nodeBackend,
    (n) => {
      const b = draw(n);
      handed.push(b);
      return b;
    },
    { size },
  );
  pool.fill();
  return { pool, handed };
}
