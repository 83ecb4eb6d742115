/**
 * A recording WebSocket relay for tests: what the attack workbench will be, reduced to passing
 * every message on and keeping a copy. The service's `connect` hook dials it instead of the peer.
 */
import { WebSocket, WebSocketServer } from 'ws';

export interface RecordedMessage {
  readonly dir: 'up' | 'down';
  readonly bytes: Uint8Array;
}

export interface RecordingProxy {
  /** ws URL that relays to `target`. */
  urlFor(target: string): string;
  readonly messages: RecordedMessage[];
  /** While true, messages from the target are kept back (a delaying attacker, TB-1). */
  holdDown: boolean;
  /** Delivers what was kept back, in order. */
  release(): void;
  close(): Promise<void>;
}

export async function startRecordingProxy(): Promise<RecordingProxy> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const messages: RecordedMessage[] = [];
  const held: (() => void)[] = [];
  wss.on('connection', (client, req) => {
    const target = new URL(req.url ?? '/', 'http://x').searchParams.get('target') ?? '';
    const upstream = new WebSocket(target);
    const pending: Buffer[] = [];
    upstream.on('open', () => {
      for (const b of pending.splice(0)) upstream.send(b);
    });
    client.on('message', (data: Buffer) => {
      messages.push({ dir: 'up', bytes: new Uint8Array(data) });
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data);
      else pending.push(data);
    });
    upstream.on('message', (data: Buffer) => {
      messages.push({ dir: 'down', bytes: new Uint8Array(data) });
      if (proxy.holdDown) held.push(() => client.send(data));
      else client.send(data);
    });
    client.on('close', () => upstream.close());
    upstream.on('close', () => client.close());
    upstream.on('error', () => client.terminate());
  });
  const address = wss.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const proxy: RecordingProxy = {
    holdDown: false,
    release: () => {
      for (const send of held.splice(0)) send();
    },
    urlFor: (target) => `ws://127.0.0.1:${port}/?target=${encodeURIComponent(target)}`,
    messages,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
  return proxy;
}
