/**
 * Rule `freshness` (SPEC §17.1 obs. 1, §17.3; stops ATK-1, ATK-6 and, with answer binding and
 * validity periods, ATK-2).
 *
 * Every signed payload carries a 16-byte sender nonce, the time it was issued and the time it
 * expires (its validity period). A receiver refuses a payload that has expired, that claims to be
 * issued in the future beyond the tolerated skew, or whose validity is longer than the profile's
 * maximum; and it remembers the nonce of every unsolicited payload it accepted until that payload
 * expires, refusing the same (sender, nonce) again. The cache's memory is bounded: entries leave
 * when they expire (at most `maxValidityMs` after they came), and when it is full of live entries
 * new messages are refused (fail closed) rather than old entries forgotten.
 */
import { type FieldReader, toHex, u64 } from '../codec.js';
import { ProtocolError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Profile } from '../profile.js';

export interface FreshnessHeader {
  readonly nonce: Uint8Array;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export function writeFreshness(h: Partial<FreshnessHeader>, out: Uint8Array[]): void {
  if (h.nonce === undefined || h.issuedAt === undefined || h.expiresAt === undefined) {
    throw new ProtocolError('CONFIG_INVALID', 'freshness: header needs nonce, issuedAt and expiresAt');
  }
  out.push(h.nonce, u64(h.issuedAt), u64(h.expiresAt));
}

export function readFreshness(r: FieldReader): FreshnessHeader {
  const nonce = r.fixed(LIMITS.NONCE_BYTES, 'header.nonce').slice();
  const issuedAt = r.u64('header.issuedAt');
  const expiresAt = r.u64('header.expiresAt');
  return { nonce, issuedAt, expiresAt };
}

/** Fresh header fields for a payload signed now. */
export function freshHeader(
  profile: Profile,
  random: (n: number) => Uint8Array,
  now: number,
  validityMs: number,
): FreshnessHeader | Record<string, never> {
  if (!profile.rules.freshness) return {};
  return { nonce: random(LIMITS.NONCE_BYTES), issuedAt: now, expiresAt: now + validityMs };
}

/** Checks the validity period of a received payload. */
export function checkFreshness(profile: Profile, h: Partial<FreshnessHeader>, now: number): void {
  if (!profile.rules.freshness) return;
  const { issuedAt, expiresAt } = h as FreshnessHeader;
  if (expiresAt <= now) {
    throw new ProtocolError('STALE', `expired ${now - expiresAt} ms ago`, { expiresAt, now });
  }
  if (issuedAt > now + profile.clockSkewMs) {
    throw new ProtocolError('STALE', `issued ${issuedAt - now} ms in the future`, { issuedAt, now });
  }
  if (expiresAt < issuedAt || expiresAt - issuedAt > profile.maxValidityMs) {
    throw new ProtocolError('STALE', `validity period of ${expiresAt - issuedAt} ms is not allowed`, {
      issuedAt,
      expiresAt,
    });
  }
}

/**
 * Early refusal before the sender's Clef is known (saves the step-9 round trip, ATK-17): a message
 * whose unverified header is expired or replays a recorded nonce is useless whether it is genuine
 * or forged, so refusing it early decides nothing an attacker could steer.
 */
export function precheckUnverified(
  profile: Profile,
  cache: ReplayCache,
  sender: string,
  h: Partial<FreshnessHeader>,
  now: number,
): void {
  if (!profile.rules.freshness) return;
  checkFreshness(profile, h, now);
  if (h.nonce !== undefined && cache.has(sender, h.nonce, now)) {
    throw new ProtocolError('REPLAY', `nonce from ${sender} already seen`, { sender });
  }
}

/**
 * Bounded replay cache of (sender, nonce) until expiry. Each sender may hold at most `perSender`
 * live entries, so one principal cannot fill the cache and lock everyone else out (fail closed for
 * that sender only); the whole cache holds at most `capacity`.
 */
export class ReplayCache {
  private readonly seen = new Map<string, number>();
  private readonly bySender = new Map<string, number>();
  /** No entry expires before this (a lower bound, kept on insert and recomputed by sweep). */
  private fullUntil = 0;

  constructor(
    readonly capacity = 65_536,
    readonly perSender = 4096,
  ) {}

  get size(): number {
    return this.seen.size;
  }

  /**
   * Records (sender, nonce) or throws REPLAY if it is already recorded and unexpired.
   * Call only after the payload's signature and validity period were checked.
   */
  admit(profile: Profile, sender: string, h: Partial<FreshnessHeader>, now: number): void {
    if (!profile.rules.freshness || h.nonce === undefined || h.expiresAt === undefined) return;
    const key = `${sender} ${toHex(h.nonce)}`;
    const until = this.seen.get(key);
    if (until !== undefined && until > now) {
      throw new ProtocolError('REPLAY', `nonce from ${sender} already seen`, { sender });
    }
    // No closure here: this runs for every message.
    const full = this.seen.size >= this.capacity || (this.bySender.get(sender) ?? 0) >= this.perSender;
    if (full && now >= this.fullUntil) this.sweep(now);
    if ((this.bySender.get(sender) ?? 0) >= this.perSender) {
      throw new ProtocolError('REPLAY_CACHE_FULL', `${sender} holds ${this.perSender} live replay entries`, {
        sender,
      });
    }
    if (this.seen.size >= this.capacity) {
      throw new ProtocolError('REPLAY_CACHE_FULL', `replay cache holds ${this.capacity} live entries`);
    }
    this.seen.set(key, h.expiresAt);
    this.bySender.set(sender, (this.bySender.get(sender) ?? 0) + 1);
    if (h.expiresAt < this.fullUntil) this.fullUntil = h.expiresAt;
  }

  /** Whether (sender, nonce) is recorded and unexpired, without recording anything. */
  has(sender: string, nonce: Uint8Array, now: number): boolean {
    const until = this.seen.get(`${sender} ${toHex(nonce)}`);
    return until !== undefined && until > now;
  }

  /**
   * Drops every expired entry, and notes when the next live one expires: while the cache stays full
   * it is not swept again before then, so a flood costs one scan, not one per message.
   */
  sweep(now: number): void {
    let next = Number.POSITIVE_INFINITY;
    for (const [k, until] of this.seen) {
      if (until <= now) {
        this.seen.delete(k);
        const sender = k.slice(0, k.lastIndexOf(' '));
        const n = (this.bySender.get(sender) ?? 1) - 1;
        if (n > 0) this.bySender.set(sender, n);
        else this.bySender.delete(sender);
      } else if (until < next) next = until;
    }
    this.fullUntil = next;
  }
}

/**
 * Pushes (M7, the hand-over) are also ordered per sender: a receiver refuses a push issued before
 * the last one it accepted from the same sender, so a held-back older program cannot be delivered
 * after a newer one (rollback by reordering, ATK-1). The sender's signed issue time is the version.
 * Bounded: at most `capacity` senders are remembered (least recently accepted forgotten first).
 */
export class PushOrder {
  private readonly last = new Map<string, number>();

  constructor(readonly capacity = 1024) {}

  check(profile: Profile, sender: string, h: Partial<FreshnessHeader>): void {
    if (!profile.rules.freshness || h.issuedAt === undefined) return;
    const last = this.last.get(sender);
    if (last !== undefined && h.issuedAt < last) {
      throw new ProtocolError('STALE', `a push from ${sender} issued before the last one accepted`, {
        sender,
        issuedAt: h.issuedAt,
        last,
      });
    }
  }

  /** Records an accepted push. */
  accept(profile: Profile, sender: string, h: Partial<FreshnessHeader>): void {
    if (!profile.rules.freshness || h.issuedAt === undefined) return;
    const last = this.last.get(sender) ?? 0;
    this.last.delete(sender);
    this.last.set(sender, Math.max(last, h.issuedAt));
    if (this.last.size > this.capacity) {
      const oldest = this.last.keys().next();
      if (oldest.done !== true) this.last.delete(oldest.value);
    }
  }
}
