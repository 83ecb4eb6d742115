/** The traffic log (traffic.ts): numbered from 1, the last `capacity` kept, read from any point. */
import { describe, expect, it } from 'vitest';
import { TrafficLog } from '../src/traffic.js';

describe('TrafficLog', () => {
  it('keeps the last frames in order and answers from any number on', () => {
    let now = 100;
    const log = new TrafficLog(3, () => now++);
    expect(log.since(0, 10)).toEqual({ last: 0, frames: [] });
    for (let i = 1; i <= 5; i++) log.add(Uint8Array.of(i, 0xab));
    expect(log.last).toBe(5);
    // Frames 1 and 2 went out of the ring; 3..5 are left.
    expect(log.since(0, 10)).toEqual({
      last: 5,
      frames: [
        { seq: 3, at: 102, frame: '03ab' },
        { seq: 4, at: 103, frame: '04ab' },
        { seq: 5, at: 104, frame: '05ab' },
      ],
    });
    expect(log.since(3, 1).frames.map((f) => f.seq)).toEqual([4]);
    expect(log.since(5, 10).frames).toEqual([]);
    expect(log.since(99, 10)).toEqual({ last: 5, frames: [] });
  });
});
