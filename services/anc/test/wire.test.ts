/**
 * Transactions inside the ANC (wire.ts): exact fragment bytes, reassembly in order, and every way a
 * sender's fragments can go wrong (out of order, another transaction, too large, left unfinished,
 * expired).
 */
import { describe, expect, it } from 'vitest';
import { AGENT_MAC, CHUNK_BYTES, fragment, NET_MAC, Reassembler } from '../src/wire.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

describe('fragment', () => {
  it('frames a short content as one last fragment, header big-endian', () => {
    const [f, ...rest] = fragment(Uint8Array.of(0xaa, 0xbb), AGENT_MAC, NET_MAC, 0x01020304);
    expect(rest).toEqual([]);
    expect(hex(f!)).toBe(`${hex(AGENT_MAC)}${hex(NET_MAC)}88b5` + '01020304' + '0000' + '0001' + 'aabb');
  });

  it('splits at CHUNK_BYTES with seq 0..n and only the last flagged; a frame is at most 1514 bytes', () => {
    const content = bytes(CHUNK_BYTES * 2 + 5);
    const frames = fragment(content, NET_MAC, AGENT_MAC, 9);
    expect(frames.map((f) => f.length)).toEqual([1514, 1514, 14 + 8 + 5]);
    expect(frames.map((f) => hex(f.subarray(18, 22)))).toEqual(['00000000', '00010000', '00020001']);
    expect(hex(Buffer.concat(frames.map((f) => f.subarray(22))))).toBe(hex(content));
  });

  it('an empty content is one empty last fragment', () => {
    const frames = fragment(new Uint8Array(0), NET_MAC, AGENT_MAC, 1);
    expect(frames.map((f) => f.length)).toEqual([22]);
  });
});

describe('Reassembler', () => {
  const payloads = (content: Uint8Array, txid: number) =>
    fragment(content, NET_MAC, AGENT_MAC, txid).map((f) => f.subarray(14));

  it('gives the content back when the last fragment arrives', () => {
    const r = new Reassembler(1 << 20, () => 0);
    const content = bytes(4000);
    const parts = payloads(content, 5);
    expect(parts.slice(0, -1).map((p) => r.push('a', p))).toEqual([{}, {}]);
    const done = r.push('a', parts.at(-1)!);
    expect(hex(done.content!)).toBe(hex(content));
    expect(done.dropped).toBeUndefined();
    expect(r.open).toBe(0);
  });

  it('keeps senders apart', () => {
    const r = new Reassembler(1 << 20, () => 0);
    const a = payloads(bytes(2000, 1), 1);
    const b = payloads(bytes(2000, 2), 1);
    r.push('a', a[0]!);
    r.push('b', b[0]!);
    expect(hex(r.push('b', b[1]!).content!)).toBe(hex(bytes(2000, 2)));
    expect(hex(r.push('a', a[1]!).content!)).toBe(hex(bytes(2000, 1)));
  });

  it('drops a transaction on a fragment out of order, of another transaction, or a runt', () => {
    const r = new Reassembler(1 << 20, () => 0);
    const p = payloads(bytes(5000), 7);
    r.push('a', p[0]!);
    expect(r.push('a', p[2]!)).toEqual({ dropped: 'fragment 2 of transaction 7 out of order' });
    expect(r.open).toBe(0);
    expect(r.push('a', p[3]!)).toEqual({ dropped: 'fragment 3 of transaction 7 out of order' });
    r.push('a', p[0]!);
    const other = payloads(bytes(5000), 8);
    expect(r.push('a', other[1]!)).toEqual({ dropped: 'fragment 1 of transaction 8 out of order' });
    expect(r.push('a', Uint8Array.of(1, 2, 3))).toEqual({ dropped: 'runt fragment' });
  });

  it('a new seq 0 replaces an unfinished one and says so', () => {
    const r = new Reassembler(1 << 20, () => 0);
    r.push('a', payloads(bytes(3000), 1)[0]!);
    const one = payloads(Uint8Array.of(1), 2);
    expect(r.push('a', one[0]!)).toEqual({
      content: Uint8Array.of(1),
      dropped: 'transaction 1 left unfinished',
    });
  });

  it('refuses more than maxBytes and expires old assemblies', () => {
    let now = 0;
    const r = new Reassembler(CHUNK_BYTES, () => now);
    const p = payloads(bytes(CHUNK_BYTES + 1), 3);
    expect(r.push('a', p[0]!)).toEqual({});
    expect(r.push('a', p[1]!)).toEqual({ dropped: `transaction 3 over ${CHUNK_BYTES} bytes` });
    r.push('b', p[0]!);
    now = 100;
    r.push('c', p[0]!);
    expect(r.expire(50)).toBe(1);
    expect(r.open).toBe(1);
  });
});
