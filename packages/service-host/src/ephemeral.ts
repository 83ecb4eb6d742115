import { type CryptoBackend, EphemeralPool, systemRandom } from '@clefnet/protocol';
import type { ServiceOptions } from './host.js';

/**
 * Key pairs a service keeps ready: a download seals at most four messages in one party (the AR's
 * M1, M5, M7 and the hand-over).
 */
const POOL_SIZE = 4;

/**
 * The `ephemeral` party option of a service ({@link ServiceOptions}): the pool it was given, else
 * HPKE ephemeral keys made in idle time (one per `setImmediate` turn, so a frame that arrives
 * meanwhile waits for one key at most) over the system CSPRNG. None when the service was given a
 * random source of its own: a seeded run stays replayable, drawing each ephemeral secret as it
 * seals. The service closes the pool when it stops.
 */
export function idleEphemeralKeys(
  backend: CryptoBackend,
  opts: Pick<ServiceOptions, 'random' | 'ephemeral'>,
): { ephemeral?: EphemeralPool } {
  if (opts.ephemeral !== undefined) return { ephemeral: opts.ephemeral };
  if (opts.random !== undefined && opts.random !== systemRandom) return {};
  return {
    ephemeral: new EphemeralPool(backend, systemRandom, {
      size: POOL_SIZE,
      schedule: (task) => {
        setImmediate(task);
      },
    }),
  };
}
