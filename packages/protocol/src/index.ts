/**
 * @clefnet/protocol: Names, Keys and Clefs; the sign and seal envelopes; every message of the
 * JP 2001-318797 A exchange with a strict decoder; the `patent` and `hardened` profiles; and the
 * parties (AR, KServ1/2, ANC machine and VE, SecApp, ASD) as transport-free state machines.
 */
export { encodeFields, equalBytes, FieldReader, fromHex, fromUtf8, toHex, u64, utf8 } from './codec.js';
export type {
  BackendName,
  Clock,
  CryptoBackend,
  Ephemeral,
  EphemeralPoolOptions,
  EphemeralSource,
  NodeBackendOptions,
  RandomSource,
} from './crypto/index.js';
export {
  BACKEND_NAMES,
  backendByName,
  createNodeBackend,
  EphemeralPool,
  hpkeOpen,
  hpkeSeal,
  nobleBackend,
  nodeBackend,
  seededRandom,
  systemRandom,
} from './crypto/index.js';
export type { Envelope, SignedBlock } from './envelope.js';
export {
  decodeEnvelope,
  decodeSignedBlock,
  encodeEnvelope,
  encodeSignedBlock,
  open,
  openEnvelope,
  recover,
  SEAL_INFO,
  SIGN_DOMAIN,
  seal,
  sealEnvelope,
  sign,
  verify,
} from './envelope.js';
export type { ErrorCode, ErrorMeta } from './errors.js';
export { ClefnetError, ERROR_CODES, isProtocolError, ProtocolError } from './errors.js';
export type { Frame, FrameKind } from './frame.js';
export { decodeFrame, encodeFrame, FRAME_KINDS, WIRE_VERSION } from './frame.js';
export type { AccessPair, AccessPairJson, AuthorityTriple, Clef, Key, TripleJson } from './identity.js';
export {
  accessPairFromJson,
  accessPairToJson,
  CLEF_BYTES,
  clefEquals,
  clefId,
  clefOf,
  decodeClef,
  decodeKey,
  encodeClef,
  encodeKey,
  generateTriple,
  KEY_BYTES,
  tripleFromJson,
  tripleToJson,
} from './identity.js';
export { LIMITS } from './limits.js';
export type { Body, BodyOf, BodyType, Header, Payload } from './messages.js';
export { buildHeader, decodeHeader, decodePayload, encodePayload, payload, TAGS } from './messages.js';
export type { Name } from './names.js';
export { checkPattern, isName, isWithin, matchesPattern, parentName, parseName } from './names.js';
export * from './parties/index.js';
export type { CreatePolicy, Profile, ProfileName, ProfileOptions, RuleOverrides, Rules } from './profile.js';
export { createProfile, HARDENED, PATENT } from './profile.js';
export { ReplayCache } from './rules/freshness.js';
export type { ServerScope } from './rules/server-scope.js';
export type { Opened } from './sim/adversary.js';
export { craftFrame, honestHeader, openFrame, readPayload, resealFrame } from './sim/adversary.js';
export type { Endpoint, InFlight, NetworkOptions, Tap, TapVerdict } from './sim/network.js';
export { MemoryNetwork } from './sim/network.js';
export type { AsdRecord, WorldNames, WorldOptions } from './sim/world.js';
export { createWorld, DEFAULT_NAMES, World } from './sim/world.js';
export type { Binding, KeyServerStore } from './stores.js';
export { createMemoryKeyServerStore } from './stores.js';
export type { StoreCase } from './testing/key-server-store-suite.js';
export { KEY_SERVER_STORE_CASES } from './testing/key-server-store-suite.js';
