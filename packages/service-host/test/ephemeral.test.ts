import {
  EphemeralPool,
  hpkeOpen,
  hpkeSeal,
  nodeBackend,
  seededRandom,
  systemRandom,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { idleEphemeralKeys } from '../src/index.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

describe('idleEphemeralKeys', () => {
  it('gives a pool over the system CSPRNG, filled one key per setImmediate turn up to 4', async () => {
    const { ephemeral } = idleEphemeralKeys(nodeBackend, {});
    expect(ephemeral).toBeInstanceOf(EphemeralPool);
    expect(idleEphemeralKeys(nodeBackend, { random: systemRandom }).ephemeral).toBeInstanceOf(EphemeralPool);
    const pool = ephemeral!;
    expect(pool.ready).toBe(0); // nothing made before it is first used
    const recipient = { secret: systemRandom(32) };
    const pk = nodeBackend.x25519PublicKey(recipient.secret);
    const info = new Uint8Array([1]);
    const sealed = hpkeSeal(nodeBackend, pk, info, new Uint8Array(0), new Uint8Array([7]), pool);
    expect(
      hpkeOpen(nodeBackend, recipient.secret, sealed.enc, info, new Uint8Array(0), sealed.ciphertext),
    ).toEqual(new Uint8Array([7]));
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      await turn();
      seen.push(pool.ready);
    }
    expect(seen).toEqual([1, 2, 3, 4, 4, 4]);
  });

  it('gives the pool the service was given, whatever its random source', () => {
    const given = new EphemeralPool(nodeBackend, systemRandom);
    expect(idleEphemeralKeys(nodeBackend, { ephemeral: given }).ephemeral).toBe(given);
    expect(idleEphemeralKeys(nodeBackend, { ephemeral: given, random: seededRandom('x') }).ephemeral).toBe(
      given,
    );
  });

  it('gives none for a source of the caller (a seeded run draws each secret as it seals)', () => {
    expect(idleEphemeralKeys(nodeBackend, { random: seededRandom('x') })).toEqual({});
  });
});
