/**
 * The crypto layer of the protocol package (TB-13): one {@link CryptoBackend} interface with two
 * implementations, HPKE written once over it, and injectable random sources. Everything else in
 * clefnet reaches the primitives only through these names.
 */

import { ProtocolError } from '../errors.js';
import type { BackendName, CryptoBackend } from './backend.js';
import { nobleBackend } from './noble.js';
import { nodeBackend } from './node.js';

export type { BackendName, Clock, CryptoBackend, RandomSource } from './backend.js';
export {
  decap,
  deriveKeyPair,
  type Ephemeral,
  EphemeralPool,
  type EphemeralPoolOptions,
  type EphemeralSource,
  encap,
  generateKeyPair,
  HPKE_AEAD_ID,
  HPKE_KDF_ID,
  HPKE_KEM_ID,
  HPKE_MODE,
  type HpkeKeyPair,
  type HpkeKeySchedule,
  type HpkeLabelScope,
  type HpkeMode,
  type HpkePsk,
  type HpkeRecipientContext,
  type HpkeRecipientOptions,
  type HpkeSenderContext,
  type HpkeSenderOptions,
  hpkeOpen,
  hpkeSeal,
  keySchedule,
  labeledExpand,
  labeledExtract,
  setupRecipient,
  setupSender,
} from './hpke.js';
export { nobleBackend } from './noble.js';
export { createNodeBackend, type NodeBackendOptions, nodeBackend } from './node.js';
export { seededRandom, systemRandom } from './random.js';

/** The names every backend answers to, in a stable order (for config validation and test suites). */
export const BACKEND_NAMES: readonly BackendName[] = ['noble', 'node'];

/** The shared backend of that name; CONFIG_INVALID for any other string (e.g. from a config file). */
export function backendByName(name: BackendName): CryptoBackend {
  switch (name) {
    case 'noble':
      return nobleBackend;
    case 'node':
      return nodeBackend;
    default:
      throw new ProtocolError('CONFIG_INVALID', `unknown crypto backend: ${String(name)}`, {
        name: String(name),
      });
  }
}
