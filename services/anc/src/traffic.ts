/**
 * What left the ANC through its real NIC, numbered from 1 and kept in a bounded ring (the oldest
 * go first), so a traffic source can collect what came out of the machine (`GET /traffic`).
 */
export interface TrafficFrame {
  /** 1, 2, 3, ... in the order the frames left. */
  readonly seq: number;
  readonly at: number;
  /** The ethernet frame, lowercase hex. */
  readonly frame: string;
}

export class TrafficLog {
  private readonly frames: TrafficFrame[] = [];
  private seq = 0;

  constructor(
    private readonly capacity: number,
    private readonly clock: () => number,
  ) {}

  /** The number of the last frame recorded (0: none yet). */
  get last(): number {
    return this.seq;
  }

  add(frame: Uint8Array): void {
    this.frames.push({ seq: ++this.seq, at: this.clock(), frame: Buffer.from(frame).toString('hex') });
    if (this.frames.length > this.capacity) this.frames.shift();
  }

  /** Frames numbered above `since`, at most `limit`, oldest first; `last` says where to go on. */
  since(since: number, limit: number): { readonly last: number; readonly frames: TrafficFrame[] } {
    const frames = this.frames.filter((f) => f.seq > since).slice(0, limit);
    return { last: this.seq, frames };
  }
}
