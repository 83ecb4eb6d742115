/**
 * Tools for the adversary E of SPEC §17 (TB-1): open what a leaked Key opens, re-seal a signed part
 * to someone else, and craft messages as any triple E holds. They use the same encoders as the
 * parties, so what E sends is byte-for-byte what a party would send.
 */
import type { CryptoBackend, RandomSource } from '../crypto/backend.js';
import { type Envelope, openEnvelope, sealEnvelope, sign } from '../envelope.js';
import { decodeFrame, encodeFrame, type Frame } from '../frame.js';
import type { AccessPair, AuthorityTriple, Clef, Key } from '../identity.js';
import {
  type Body,
  type BodyType,
  buildHeader,
  decodePayload,
  encodePayload,
  type Header,
  type Payload,
  payload,
} from '../messages.js';
import type { Profile } from '../profile.js';

export interface Opened {
  readonly frame: Frame;
  readonly envelope: Envelope;
}

/** Opens a SEALED frame with a Key E holds (a leaked or its own). Throws ProtocolError otherwise. */
export function openFrame(backend: CryptoBackend, key: Key, bytes: Uint8Array): Opened {
  const frame = decodeFrame(bytes);
  return { frame, envelope: openEnvelope(backend, key, frame.body) };
}

/** Reads the payload of an opened envelope as one of `expected` (no signature check). */
export function readPayload<T extends BodyType>(
  profile: Profile,
  envelope: Envelope,
  expected: readonly [T, ...T[]],
): Payload<Extract<Body, { type: T }>> {
  return decodePayload(profile.rules, envelope.signed.payload, expected);
}

/** Seals an envelope (e.g. one E opened) to another receiver: the surreptitious forwarding of ATK-5. */
export function resealFrame(
  backend: CryptoBackend,
  random: RandomSource,
  opened: Opened,
  to: AccessPair | { readonly name: Opened['frame']['to']; readonly clef: Clef },
): Uint8Array {
  const body = sealEnvelope(backend, opened.envelope, to.clef, random);
  return encodeFrame({ ...opened.frame, to: to.name, body });
}

/** Crafts `< Name-S ‖ <payload>Key-S >Clef-R` as `sender`, with whatever header E chooses. */
export function craftFrame(
  backend: CryptoBackend,
  random: RandomSource,
  profile: Profile,
  sender: AuthorityTriple,
  receiver: AccessPair,
  body: Body,
  header: Header = {},
  corr = '',
): Uint8Array {
  const signed = sign(backend, sender.key, encodePayload(profile.rules, payload(body, header)));
  const sealed = sealEnvelope(backend, { sender: sender.name, signed }, receiver.clef, random);
  return encodeFrame({ kind: 'SEALED', to: receiver.name, from: '', corr, body: sealed });
}

/** A header for `profile` as an honest sender would write it at time `now`. */
export function honestHeader(
  profile: Profile,
  random: RandomSource,
  now: number,
  sender: AccessPair,
  receiver: AccessPair,
  inReplyTo?: Uint8Array,
): Header {
  return buildHeader(profile, random, now, sender.name, receiver.name, { inReplyTo });
}
