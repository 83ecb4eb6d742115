/**
 * Golden vectors of the wire (STYLE: the wire lives in one place, with golden vectors;
 * docs/protocol.md §Worked example). Everything comes from fixed seeds and fixed clock values, so
 * the output is the same on every run and with either crypto backend.
 *
 *   cd /work/main && npx tsx --conditions=source packages/protocol/test/vectors/generate.ts
 *
 * writes `protocol-vectors.json` beside this file. `../vectors.test.ts` checks every vector against
 * both backends and also runs {@link buildVectors} in memory, asserting it reproduces the checked-in
 * file byte for byte: a code change that alters the wire fails that test until the file is
 * regenerated on purpose (and the change reviewed).
 */
import { realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type AuthorityTriple,
  type Body,
  type BodyType,
  type CryptoBackend,
  decodeEnvelope,
  encodeClef,
  encodeEnvelope,
  encodeFields,
  encodeFrame,
  encodeKey,
  encodePayload,
  encodeSignedBlock,
  generateTriple,
  HARDENED,
  type Header,
  LIMITS,
  nobleBackend,
  PATENT,
  type Payload,
  type Profile,
  type ProtocolError,
  parseName,
  payload,
  SEAL_INFO,
  SIGN_DOMAIN,
  sealEnvelope,
  seededRandom,
  sign,
  TAGS,
  type TripleJson,
  toHex,
  tripleToJson,
  utf8,
  WIRE_VERSION,
} from '@clefnet/protocol';

/** Prefix of every seed used here. */
export const SEED = 'clefnet/vectors/v1';
/** 2026-01-01T00:00:00Z, the clock of every hardened header (plus a fixed offset per message). */
export const T0 = Date.UTC(2026, 0, 1);

// ---- JSON shapes -------------------------------------------------------------------------------

export interface HeaderJson {
  sender?: string;
  receiver?: string;
  nonce?: string;
  issuedAt?: number;
  expiresAt?: number;
  inReplyTo?: string;
}

export type BodyJson =
  | { type: 'clef-query' | 'new-query'; subject: string }
  | { type: 'clef-answer'; subject: string; clef: string }
  | { type: 'triple'; triple: TripleJson }
  | { type: 'program'; program: string }
  | { type: 'handover'; triple: TripleJson; keyServer: string; location: string }
  | { type: 'channel-open' | 'channel-reply'; peer: string; data: string }
  | { type: 'channel-from'; peer: string; clef: string; data: string }
  | { type: 'error'; code: string; detail: string; subject: string };

export interface PayloadJson {
  tag: string;
  header: HeaderJson;
  body: BodyJson;
}

/** One message of the exchange, at every layer from payload to transport frame. */
export interface MessageVector {
  id: string;
  profile: 'patent' | 'hardened';
  type: BodyType;
  /** Where the message is used (SPEC step labels). */
  usedIn: string[];
  sender: string;
  receiver: string;
  /** The payload as a value: names as text, Clefs (64 bytes), Keys (64 bytes) and bytes as hex. */
  value: PayloadJson;
  /** encodePayload(profile rules, value). */
  payload: string;
  /** encodeSignedBlock(sign(sender Key, payload)): payload ‖ Ed25519 signature, as two fields. */
  signed: string;
  /** encodeEnvelope({ sender, signed }): Name-S ‖ <payload>Key-S. */
  envelope: string;
  /** The fixed HPKE ephemeral X25519 secret used for this seal (never do this outside vectors). */
  ephemeral: { secret: string };
  /** sealEnvelope(envelope, receiver Clef, ephemeral): enc (32) ‖ ciphertext ‖ tag (16). */
  sealed: string;
  /** Routing fields of the SEALED frame (TB-15: untrusted). */
  route: { kind: 'SEALED'; to: string; from: string; corr: string };
  /** encodeFrame({ kind: SEALED, to, from, corr, body: sealed }). */
  frame: string;
}

/** A negative answer as the patent (unsigned ERROR frame) or hardened (SIGNED frame) sends it. */
export interface ErrorFrameVector {
  id: string;
  profile: 'patent' | 'hardened';
  kind: 'ERROR' | 'SIGNED';
  sender: string;
  receiver: string;
  value: PayloadJson;
  payload: string;
  /** SIGNED only: the signed block and the clear envelope that is the frame body. */
  signed?: string;
  envelope?: string;
  route: { kind: 'ERROR' | 'SIGNED'; to: string; from: string; corr: string };
  /** The frame body: the bare payload (ERROR) or the envelope in clear (SIGNED). */
  body: string;
  frame: string;
}

export interface TripleVector {
  role: string;
  /** generateTriple(backend, seededRandom(seed), parseName(name)). */
  seed: string;
  json: TripleJson;
  clef: { sign: string; seal: string };
  key: { sign: string; open: string };
}

export interface NameVector {
  text: string;
  valid: boolean;
  /** Valid Names: the TB-14 field, 4-byte length then UTF-8. */
  field?: string;
  /** Invalid Names: the error code and the reason parseName gives. */
  code?: string;
  reason?: string;
}

export interface ProtocolVectors {
  about: string;
  command: string;
  seedPrefix: string;
  clock: { t0: number; note: string };
  constants: {
    wireVersion: string;
    signDomain: string;
    sealInfo: string;
    nonceBytes: number;
  };
  triples: TripleVector[];
  names: NameVector[];
  messages: MessageVector[];
  errorFrames: ErrorFrameVector[];
}

// ---- fixed inputs ------------------------------------------------------------------------------

const ROLES = {
  ks1: 'ks1.clefnet.test',
  ks2: 'ks2.clefnet.test',
  ar: 'ar.clefnet.test',
  ve: 've1.anc1.clefnet.test',
  secApp: 'billing.ar.clefnet.test',
  asd: 'asd.clefnet.test',
} as const;
type Role = keyof typeof ROLES;

const PROGRAM = utf8('clefnet demo program v1\n');
const LOCATION = 'ws://127.0.0.1:0/ks2';
const REQUEST_DATA = utf8('usage 42');
const REPLY_DATA = utf8('ok 1');
const UNKNOWN = 've9.anc1.clefnet.test';

/** One message of the exchange: who sends what to whom, and which request it answers. */
interface Spec {
  readonly type: BodyType;
  readonly usedIn: string[];
  readonly from: Role;
  readonly to: Role;
  /** Offset from T0 of the issue time (hardened). */
  readonly at: number;
  /** The type of the message this one answers (its nonce goes into inReplyTo, hardened). */
  readonly answers?: BodyType;
  /** Exchange whose correlation id the frame carries (answers reuse the request's). */
  readonly corr: string;
  readonly validityMs: (p: Profile) => number;
  readonly body: (t: Record<Role, AuthorityTriple>) => Body;
}

const message = (p: Profile) => p.messageValidityMs;

const SPECS: readonly Spec[] = [
  {
    type: 'clef-query',
    usedIn: ['M1', 'M9a', 'RESOLVE-REQ'],
    from: 'ar',
    to: 'ks1',
    at: 0,
    corr: 'step1',
    validityMs: message,
    body: () => ({ type: 'clef-query', subject: parseName(ROLES.ve) }),
  },
  {
    type: 'clef-answer',
    usedIn: ['M3', 'M9b', 'RESOLVE-ANS'],
    from: 'ks1',
    to: 'ar',
    at: 100,
    answers: 'clef-query',
    corr: 'step1',
    // A key server's Clef answer is valid for the profile's answer validity (KeyServer.answerClef).
    validityMs: (p) => p.answerValidityMs,
    body: (t) => ({ type: 'clef-answer', subject: t.ve.name, clef: t.ve.clef }),
  },
  {
    type: 'new-query',
    usedIn: ['M5', 'VEKEY-REQ'],
    from: 'ar',
    to: 'ks2',
    at: 200,
    corr: 'step5',
    validityMs: message,
    body: () => ({ type: 'new-query', subject: parseName(ROLES.secApp) }),
  },
  {
    type: 'triple',
    usedIn: ['M6', 'VEKEY-ANS'],
    from: 'ks2',
    to: 'ar',
    at: 300,
    answers: 'new-query',
    corr: 'step5',
    validityMs: message,
    body: (t) => ({ type: 'triple', triple: t.secApp }),
  },
  {
    type: 'program',
    usedIn: ['M7'],
    from: 'ar',
    to: 've',
    at: 400,
    corr: '',
    validityMs: message,
    body: () => ({ type: 'program', program: PROGRAM }),
  },
  {
    type: 'handover',
    usedIn: ['HANDOVER'],
    from: 'ar',
    to: 've',
    at: 400,
    corr: '',
    validityMs: message,
    body: (t) => ({ type: 'handover', triple: t.secApp, keyServer: t.ks2.name, location: LOCATION }),
  },
  {
    type: 'channel-open',
    usedIn: ['OPEN'],
    from: 'secApp',
    to: 'ks2',
    at: 500,
    corr: 'open',
    validityMs: message,
    body: (t) => ({ type: 'channel-open', peer: t.asd.name, data: REQUEST_DATA }),
  },
  {
    type: 'channel-from',
    usedIn: ['FROM-ASD', 'FROM-SECAPP'],
    from: 'ks2',
    to: 'asd',
    at: 600,
    corr: 'relay',
    validityMs: message,
    body: (t) => ({ type: 'channel-from', peer: t.secApp.name, clef: t.secApp.clef, data: REQUEST_DATA }),
  },
  {
    type: 'channel-reply',
    usedIn: ['REPLY'],
    from: 'asd',
    to: 'ks2',
    at: 700,
    answers: 'channel-from',
    corr: 'relay',
    validityMs: message,
    body: (t) => ({ type: 'channel-reply', peer: t.secApp.name, data: REPLY_DATA }),
  },
  {
    type: 'error',
    usedIn: ['ERR'],
    from: 'ks1',
    to: 'ar',
    at: 100,
    answers: 'clef-query',
    corr: 'step1',
    validityMs: message,
    body: () => ({
      type: 'error',
      code: 'UNKNOWN_NAME',
      detail: `${UNKNOWN} is not registered`,
      subject: parseName(UNKNOWN),
    }),
  },
];

const NAME_EXAMPLES: readonly string[] = [
  'ks1.clefnet.test',
  've1.anc1.clefnet.test',
  'a',
  '0',
  'x-1.y-2',
  `${'a'.repeat(63)}.test`,
  [0, 1, 2].map(() => 'a'.repeat(63)).join('.') + '.' + 'b'.repeat(61),
  '',
  'Ks1.clefnet.test',
  'a..b',
  '.a',
  'a.',
  '-a',
  'a-',
  'a_b',
  'a b',
  'bücher.test',
  `${'a'.repeat(64)}.test`,
  [0, 1, 2].map(() => 'a'.repeat(63)).join('.') + '.' + 'b'.repeat(62),
];

// ---- builders ----------------------------------------------------------------------------------

function seedOf(...parts: string[]): string {
  return [SEED, ...parts].join('/');
}

/** The fixed triple of a role. */
export function tripleOf(backend: CryptoBackend, role: Role): AuthorityTriple {
  return generateTriple(backend, seededRandom(seedOf('triple', role)), parseName(ROLES[role]));
}

function triples(backend: CryptoBackend): Record<Role, AuthorityTriple> {
  const out = {} as Record<Role, AuthorityTriple>;
  for (const role of Object.keys(ROLES) as Role[]) out[role] = tripleOf(backend, role);
  return out;
}

function nonceOf(profile: Profile, type: BodyType): Uint8Array {
  return seededRandom(seedOf('nonce', profile.name, type))(LIMITS.NONCE_BYTES);
}

function corrOf(exchange: string): string {
  return exchange === '' ? '' : toHex(seededRandom(seedOf('corr', exchange))(8));
}

function headerFor(profile: Profile, spec: Spec, t: Record<Role, AuthorityTriple>): Header {
  if (profile.name !== 'hardened') return {};
  const issuedAt = T0 + spec.at;
  return {
    sender: t[spec.from].name,
    receiver: t[spec.to].name,
    nonce: nonceOf(profile, spec.type),
    issuedAt,
    expiresAt: issuedAt + spec.validityMs(profile),
    inReplyTo: spec.answers === undefined ? new Uint8Array(0) : nonceOf(profile, spec.answers),
  };
}

export function headerToJson(h: Header): HeaderJson {
  const out: HeaderJson = {};
  if (h.sender !== undefined) out.sender = h.sender;
  if (h.receiver !== undefined) out.receiver = h.receiver;
  if (h.nonce !== undefined) out.nonce = toHex(h.nonce);
  if (h.issuedAt !== undefined) out.issuedAt = h.issuedAt;
  if (h.expiresAt !== undefined) out.expiresAt = h.expiresAt;
  if (h.inReplyTo !== undefined) out.inReplyTo = toHex(h.inReplyTo);
  return out;
}

export function bodyToJson(b: Body): BodyJson {
  switch (b.type) {
    case 'clef-query':
    case 'new-query':
      return { type: b.type, subject: b.subject };
    case 'clef-answer':
      return { type: b.type, subject: b.subject, clef: toHex(encodeClef(b.clef)) };
    case 'triple':
      return { type: b.type, triple: tripleToJson(b.triple) };
    case 'program':
      return { type: b.type, program: toHex(b.program) };
    case 'handover':
      return { type: b.type, triple: tripleToJson(b.triple), keyServer: b.keyServer, location: b.location };
    case 'channel-open':
    case 'channel-reply':
      return { type: b.type, peer: b.peer, data: toHex(b.data) };
    case 'channel-from':
      return { type: b.type, peer: b.peer, clef: toHex(encodeClef(b.clef)), data: toHex(b.data) };
    case 'error':
      return { type: b.type, code: b.code, detail: b.detail, subject: b.subject };
  }
}

export function payloadToJson(p: Payload): PayloadJson {
  return { tag: p.tag, header: headerToJson(p.header), body: bodyToJson(p.body) };
}

function messageVector(
  backend: CryptoBackend,
  profile: Profile,
  spec: Spec,
  t: Record<Role, AuthorityTriple>,
): MessageVector {
  const id = `${profile.name}/${spec.type}`;
  const sender = t[spec.from];
  const receiver = t[spec.to];
  const value = payload(spec.body(t), headerFor(profile, spec, t));
  const payloadBytes = encodePayload(profile.rules, value);
  const signed = sign(backend, sender.key, payloadBytes);
  const envelope = encodeEnvelope({ sender: sender.name, signed });
  const ephemeral = { secret: seededRandom(seedOf('ephemeral', id))(32) };
  const sealed = sealEnvelope(backend, decodeEnvelope(envelope), receiver.clef, ephemeral);
  const route = { kind: 'SEALED' as const, to: receiver.name, from: '' as const, corr: corrOf(spec.corr) };
  return {
    id,
    profile: profile.name as 'patent' | 'hardened',
    type: spec.type,
    usedIn: spec.usedIn,
    sender: sender.name,
    receiver: receiver.name,
    value: payloadToJson(value),
    payload: toHex(payloadBytes),
    signed: toHex(encodeSignedBlock(signed)),
    envelope: toHex(envelope),
    ephemeral: { secret: toHex(ephemeral.secret) },
    sealed: toHex(sealed),
    route,
    frame: toHex(encodeFrame({ ...route, body: sealed })),
  };
}

/** The negative answer to M1 in each profile, as Party.sendError builds it. */
function errorFrameVector(
  backend: CryptoBackend,
  profile: Profile,
  t: Record<Role, AuthorityTriple>,
): ErrorFrameVector {
  const spec = SPECS.find((s) => s.type === 'error')!;
  const sender = t[spec.from];
  const receiver = t[spec.to];
  const route = { to: receiver.name, from: sender.name, corr: corrOf(spec.corr) };
  if (!profile.rules.signedErrors) {
    // Unsigned error frames carry no header whatever the profile (TB-15).
    const value = payload(spec.body(t));
    const body = encodePayload(PATENT.rules, value);
    return {
      id: `${profile.name}/error-frame`,
      profile: profile.name as 'patent',
      kind: 'ERROR',
      sender: sender.name,
      receiver: receiver.name,
      value: payloadToJson(value),
      payload: toHex(body),
      route: { kind: 'ERROR', ...route },
      body: toHex(body),
      frame: toHex(encodeFrame({ kind: 'ERROR', ...route, body })),
    };
  }
  const value = payload(spec.body(t), headerFor(profile, spec, t));
  const payloadBytes = encodePayload(profile.rules, value);
  const signed = sign(backend, sender.key, payloadBytes);
  const envelope = encodeEnvelope({ sender: sender.name, signed });
  return {
    id: `${profile.name}/error-frame`,
    profile: profile.name as 'hardened',
    kind: 'SIGNED',
    sender: sender.name,
    receiver: receiver.name,
    value: payloadToJson(value),
    payload: toHex(payloadBytes),
    signed: toHex(encodeSignedBlock(signed)),
    envelope: toHex(envelope),
    route: { kind: 'SIGNED', ...route },
    body: toHex(envelope),
    frame: toHex(encodeFrame({ kind: 'SIGNED', ...route, body: envelope })),
  };
}

function tripleVector(backend: CryptoBackend, role: Role): TripleVector {
  const triple = tripleOf(backend, role);
  const clef = encodeClef(triple.clef);
  const key = encodeKey(triple.key);
  return {
    role,
    seed: seedOf('triple', role),
    json: tripleToJson(triple),
    clef: { sign: toHex(clef.subarray(0, 32)), seal: toHex(clef.subarray(32)) },
    key: { sign: toHex(key.subarray(0, 32)), open: toHex(key.subarray(32)) },
  };
}

function nameVector(text: string): NameVector {
  try {
    const name = parseName(text);
    return { text, valid: true, field: toHex(encodeFields([utf8(name)])) };
  } catch (e) {
    const err = e as ProtocolError;
    return { text, valid: false, code: err.code, reason: String(err.meta.reason) };
  }
}

/** Every vector, computed with `backend` (both backends must give the same result). */
export function buildVectors(backend: CryptoBackend = nobleBackend): ProtocolVectors {
  const missing = (Object.keys(TAGS) as BodyType[]).filter((k) => !SPECS.some((s) => s.type === k));
  if (missing.length > 0) throw new Error(`no vector spec for body types ${missing.join(', ')}`);
  const t = triples(backend);
  const profiles = [PATENT, HARDENED];
  return {
    about:
      'Golden vectors of the clefnet wire (CLEFNET/1), both profiles. Checked by ' +
      'packages/protocol/test/vectors.test.ts against both crypto backends; see docs/protocol.md.',
    command: 'cd /work/main && npx tsx --conditions=source packages/protocol/test/vectors/generate.ts',
    seedPrefix: SEED,
    clock: {
      t0: T0,
      note: 'hardened headers: issuedAt = t0 + a fixed offset per message; expiresAt = issuedAt + validity',
    },
    constants: {
      wireVersion: WIRE_VERSION,
      signDomain: toHex(SIGN_DOMAIN),
      sealInfo: toHex(SEAL_INFO),
      nonceBytes: LIMITS.NONCE_BYTES,
    },
    triples: (Object.keys(ROLES) as Role[]).map((role) => tripleVector(backend, role)),
    names: NAME_EXAMPLES.map(nameVector),
    messages: profiles.flatMap((profile) => SPECS.map((spec) => messageVector(backend, profile, spec, t))),
    errorFrames: profiles.map((profile) => errorFrameVector(backend, profile, t)),
  };
}

/** The file text: stable key order, two-space indent, final newline. */
export function renderVectors(v: ProtocolVectors): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}

export const VECTORS_FILE = new URL('./protocol-vectors.json', import.meta.url);

function main(): void {
  const text = renderVectors(buildVectors(nobleBackend));
  writeFileSync(VECTORS_FILE, text);
  const v = JSON.parse(text) as ProtocolVectors;
  console.log(
    `wrote ${fileURLToPath(VECTORS_FILE)}: ${v.messages.length} messages, ` +
      `${v.errorFrames.length} error frames, ${v.triples.length} triples, ${v.names.length} names`,
  );
}

function isEntry(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) main();
