/**
 * Test fixtures every service needs: a manual clock, temp folders, a silent logger, polling, JSON
 * over HTTP, and a protocol party connected over real WebSockets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Delivery, Name, Outbound, Outcome, Party, ProtocolError } from '@clefnet/protocol';
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
