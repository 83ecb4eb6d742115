/**
 * Storage interfaces the parties read and write, with in-memory implementations. The services put
 * SQLite behind the same interfaces; `src/testing/key-server-store-suite.ts` holds the suite every
 * implementation runs.
 * All methods are synchronous so that a service can run a whole `receive()` inside one database
 * transaction: either every change of a message is stored, or none.
 */
import type { Clef } from './identity.js';
import type { Name } from './names.js';

/** An access pair held by a key server, with who created it (TB-16) and whether it is revoked. */
export interface Binding {
  readonly name: Name;
  readonly clef: Clef;
  /** The requester that had it created (minted triples, VE keys), or null when registered by an admin. */
  readonly owner: Name | null;
  readonly createdAt: number;
  /** Time of revocation (PROTO-26), or null. */
  readonly revokedAt: number | null;
}

export interface KeyServerStore {
  get(name: Name): Binding | undefined;
  /** Inserts or replaces the binding for `binding.name`. */
  put(binding: Binding): void;
  /** Marks a binding revoked; false when there is none. */
  revoke(name: Name, at: number): boolean;
  /** Every binding, ordered by Name. */
  list(): Binding[];
}

export function createMemoryKeyServerStore(initial: readonly Binding[] = []): KeyServerStore {
  const rows = new Map<Name, Binding>(initial.map((b) => [b.name, b]));
  return {
    get: (name) => rows.get(name),
    put: (b) => {
      rows.set(b.name, b);
    },
    revoke: (name, at) => {
      const b = rows.get(name);
      if (b === undefined) return false;
      rows.set(name, { ...b, revokedAt: at });
      return true;
    },
    list: () => [...rows.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}
