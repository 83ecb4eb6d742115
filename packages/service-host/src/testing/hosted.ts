/**
 * A protocol party served on its own WebSocket server by {@link createServiceHost} (memory state,
 * no-op transaction, a silent logger): a peer that a service under test talks to over real
 * sockets. It keeps what the party delivers.
 */
import type { Delivery, Party } from '@clefnet/protocol';
import { createServiceHost, type ListenAddress, type ServiceHost } from '../host.js';
import { silent } from './helpers.js';

export interface HostedParty<P extends Party> {
  readonly party: P;
  readonly host: ServiceHost;
  readonly address: ListenAddress;
  readonly deliveries: Delivery[];
}

export async function hostParty<P extends Party>(
  party: P,
  clock: () => number,
  directory: Record<string, string> = {},
): Promise<HostedParty<P>> {
  const deliveries: Delivery[] = [];
  const host = createServiceHost({
    name: party.name,
    party: {
      receive: (bytes) => {
        const o = party.receive(bytes);
        deliveries.push(...o.deliver);
        return o;
      },
    },
    transaction: (fn) => fn(),
    logger: silent,
    clock,
    directory,
    heartbeatMs: 0,
    closeGraceMs: 200,
    storeOpen: () => true,
  });
  const address = await host.start();
  return { party, host, address, deliveries };
}
