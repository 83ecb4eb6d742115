/**
 * What left the ANC through its real NIC, numbered from 1 and kept in a bounded ring (the oldest
 * go first), so a traffic source can collect what came out of the machine (`GET /traffic`). A frame
 * is kept as it left and turned into hex only when it is read.
 */
export interface TrafficFrame {
  /** 1, 2, 3, ... in the order the frames left. */
  readonly seq: number;
  readonly at: number;
  /** The ethernet frame, lowercase hex. */
  readonly frame: string;
}

interface Kept {
  readonly at: number;
  readonly bytes: Uint8Array;
}

export class TrafficLog {
  /** Frame `seq` sits at `(seq - 1) % capacity` while it is among the last `capacity`. */
  private readonly ring: Kept[] = [];
  private seq = 0;

  constructor(
    private readonly capacity: number,
    private readonly clock: () => number,
  ) {}

  /** The number of the last frame recorded (0: none yet). */
  get last(): number {
    return this.seq;
  }

  /** Keeps `frame` (the caller's copy: it is not copied again). */
  add(frame: Uint8Array): void {
    this.ring[this.seq % this.capacity] = { at: this.clock(), bytes: frame };
    this.seq++;
  }

  /** Frames numbered above `since`, at most `limit`, oldest first; `last` says where to go on. */
  since(since: number, limit: number): { readonly last: number; readonly frames: TrafficFrame[] } {
    const first = Math.max(since + 1, this.seq - this.capacity + 1, 1);
    const frames: TrafficFrame[] = [];
    for (let seq = first; seq <= this.seq && frames.length < limit; seq++) {
      const k = this.ring[(seq - 1) % this.capacity]!;
      frames.push({ seq, at: k.at, frame: Buffer.from(k.bytes).toString('hex') });
    }
    return { last: this.seq, frames };
  }
}
