/**
 * A link: one WebSocket, inbound (a peer connected to /ws) or outbound (this service dialled a
 * directory entry), seen as something that carries whole frames (TB-15: one binary message = one
 * frame). An outbound link queues frames while it connects; a peer that stops reading is cut off
 * rather than letting its backlog grow without bound.
 */
import type { Step } from '@clefnet/protocol';
import { WebSocket } from 'ws';

/** Frames queued on a link that is still connecting. */
const MAX_QUEUED_FRAMES = 256;
/** Bytes the socket may hold unsent before the peer is taken for stuck and the socket terminated. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export interface Link {
  readonly id: string;
  /** Open, or still connecting (frames are queued). */
  readonly usable: boolean;
  /** Sends (or queues) one frame; false when it was dropped. `step` names it in a drop report. */
  send(bytes: Uint8Array, step?: Step): boolean;
}

/** `onDropped` is told of each queued frame lost because the socket closed before it opened. */
export function createLink(
  ws: WebSocket,
  id: string,
  onDropped: (bytes: Uint8Array, step: Step | undefined) => void = () => {},
): Link {
  const queue: { readonly bytes: Uint8Array; readonly step: Step | undefined }[] = [];
  ws.once('open', () => {
    for (const q of queue.splice(0)) ws.send(q.bytes, { binary: true });
  });
  ws.once('close', () => {
    for (const q of queue.splice(0)) onDropped(q.bytes, q.step);
  });
  return {
    id,
    get usable() {
      return ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING;
    },
    send(bytes, step) {
      if (ws.readyState === WebSocket.CONNECTING) {
        if (queue.length >= MAX_QUEUED_FRAMES) return false;
        queue.push({ bytes, step });
        return true;
      }
      if (ws.readyState !== WebSocket.OPEN) return false;
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        ws.terminate();
        return false;
      }
      ws.send(bytes, { binary: true });
      return true;
    },
  };
}
