/**
 * The envelopes of PROTO-12 (src/envelope.ts) beyond the golden vectors: the records they sign
 * and seal are built in reused scratch space, so results must never alias it or each other.
 */
import {
  BACKEND_NAMES,
  backendByName,
  decodeEnvelope,
  encodeEnvelope,
  encodeFields,
  generateTriple,
  open,
  openEnvelope,
  parseName,
  SIGN_DOMAIN,
  seal,
  sealEnvelope,
  seededRandom,
  sign,
  toHex,
  utf8,
  verify,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';

describe.each(BACKEND_NAMES)('envelopes on the %s backend', (name) => {
  const backend = backendByName(name);
  const random = seededRandom(`envelope-${name}`);
  const a = generateTriple(backend, random, parseName('a.envelope.test'));
  const b = generateTriple(backend, random, parseName('b.envelope.test'));

  it('signs ("clefnet/v1 sign", payload) as a TB-14 record, for payloads of any size', () => {
    for (const n of [0, 1, 64, 1000, 5000, 70_000]) {
      const payload = new Uint8Array(n).fill(n & 0xff);
      const block = sign(backend, a.key, payload);
      expect(block.payload, `size ${n}`).toBe(payload);
      const record = encodeFields([SIGN_DOMAIN, payload]);
      expect(backend.ed25519Verify(a.clef.sign, record, block.signature), `size ${n}`).toBe(true);
      expect(verify(backend, a.clef, block), `size ${n}`).toBe(true);
      expect(verify(backend, b.clef, block), `size ${n}`).toBe(false);
    }
  });

  it('sealed envelopes are fresh arrays: a later seal changes no earlier one', () => {
    const first = { sender: a.name, signed: sign(backend, a.key, utf8('first payload')) };
    const second = { sender: a.name, signed: sign(backend, a.key, new Uint8Array(3000).fill(7)) };
    const sealedFirst = sealEnvelope(backend, first, b.clef, random);
    const copy = sealedFirst.slice();
    const sealedSecond = sealEnvelope(backend, second, b.clef, random);
    expect(toHex(sealedFirst)).toBe(toHex(copy));
    expect(openEnvelope(backend, b.key, sealedFirst)).toEqual(first);
    expect(openEnvelope(backend, b.key, sealedSecond)).toEqual(second);
    expect(open(backend, b.key, sealedFirst)).toEqual(encodeEnvelope(first));
  });

  it('encodeEnvelope is the record (Name-S, (payload, signature)), and decodes back', () => {
    const env = { sender: a.name, signed: sign(backend, a.key, utf8('p')) };
    const bytes = encodeEnvelope(env);
    const expected = encodeFields([utf8(a.name), encodeFields([env.signed.payload, env.signed.signature])]);
    expect(toHex(bytes)).toBe(toHex(expected));
    expect(decodeEnvelope(bytes)).toEqual(env);
    expect(open(backend, b.key, seal(backend, b.clef, bytes, random))).toEqual(bytes);
  });
});
