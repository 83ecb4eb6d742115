import { type CryptoBackend, EphemeralPool, type RandomSource, systemRandom } from '@clefnet/protocol';

/** Key pairs a service keeps ready: a download seals at most three messages in one party. */
const POOL_SIZE = 4;

/**
 * The `ephemeral` party option of a service: HPKE ephemeral keys made in idle time (one per
 * `setImmediate` turn, so a frame that arrives meanwhile waits for one key at most) over the
 * system CSPRNG. None when the service was given a random source of its own: a seeded run stays
 * replayable, drawing each ephemeral secret as it seals.
 */
export function idleEphemeralKeys(
  backend: CryptoBackend,
  random: RandomSource | undefined,
): { ephemeral?: EphemeralPool } {
  if (random !== undefined && random !== systemRandom) return {};
  return {
    ephemeral: new EphemeralPool(backend, systemRandom, {
      size: POOL_SIZE,
      schedule: (task) => {
        setImmediate(task);
      },
    }),
  };
}
