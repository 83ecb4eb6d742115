/**
 * Protocol profiles (TB-13): `patent` keeps every message shape and check exactly as published;
 * `hardened` adds what SPEC §17.3 lists. Both run the same code; each difference is one named
 * rule below, implemented once in `rules/<rule>.ts`, so a researcher can switch a single rule off
 * and watch which attack comes back.
 */
import { ProtocolError } from './errors.js';

/** KServ2 (and KServ1 for VE keys) creation policy for `New(N) = ?` (TB-16). */
export type CreatePolicy = 'overwrite' | 'reject-if-exists' | 'owner-only';

export interface Rules {
  /** Receivers check that a payload's tag is the one the step expects (TB-14 flag; stops ATK-8/10). */
  readonly typeTags: boolean;
  /** Sender and receiver Names sit inside the signed part and are checked (Lowe's fix; ATK-5, ATK-7). */
  readonly namesInSignature: boolean;
  /**
   * Every signed payload carries a sender nonce, an issue time and an expiry; receivers refuse
   * expired or future messages and keep a bounded replay cache of unsolicited ones (ATK-1, ATK-6).
   */
  readonly freshness: boolean;
  /**
   * Answers carry the request nonce; a requester accepts an answer only for an outstanding request
   * about the same subject (ATK-2, ATK-3, ATK-11). Needs `freshness` (the nonce comes from it).
   */
  readonly answerBinding: boolean;
  /** An answer is taken only from the server that was asked, and only within that server's scope (ATK-4). */
  readonly serverScope: boolean;
  /** Negative answers are signed by the server and bound to the request (TB-15; ATK-15c). */
  readonly signedErrors: boolean;
  /**
   * Step 8 in the closed model: the ANC accepts pushes only from the sender Names on its list
   * (PROTO-21; stops ATK-14). Off: the open model, any sender's Name is taken at face value.
   */
  readonly closedModel: boolean;
  /** Who may create which Name at a minting key server (TB-16; ATK-13, ATK-6). */
  readonly nameOwnership: {
    readonly policy: CreatePolicy;
    /** When true a requester may only create Names at or below its own Name. */
    readonly subtreeOnly: boolean;
  };
}

export type ProfileName = 'patent' | 'hardened';

export interface Profile {
  readonly name: ProfileName | 'custom';
  readonly rules: Rules;
  /** How long a message this party signs stays valid (freshness rule). */
  readonly messageValidityMs: number;
  /** How long a key-server answer may be relied upon (validity period of the binding). */
  readonly answerValidityMs: number;
  /** Largest accepted expiry minus issue time; bounds the replay cache's memory. */
  readonly maxValidityMs: number;
  /** Clock difference tolerated for an issue time in the future. */
  readonly clockSkewMs: number;
}

const TIMING = {
  messageValidityMs: 30_000,
  answerValidityMs: 300_000,
  maxValidityMs: 600_000,
  clockSkewMs: 5_000,
} as const;

export const PATENT: Profile = {
  name: 'patent',
  rules: {
    typeTags: false,
    namesInSignature: false,
    freshness: false,
    answerBinding: false,
    serverScope: false,
    signedErrors: false,
    closedModel: false,
    nameOwnership: { policy: 'overwrite', subtreeOnly: false },
  },
  ...TIMING,
};

export const HARDENED: Profile = {
  name: 'hardened',
  rules: {
    typeTags: true,
    namesInSignature: true,
    freshness: true,
    answerBinding: true,
    serverScope: true,
    signedErrors: true,
    closedModel: true,
    nameOwnership: { policy: 'reject-if-exists', subtreeOnly: true },
  },
  ...TIMING,
};

export type RuleOverrides = Partial<Omit<Rules, 'nameOwnership'>> & {
  nameOwnership?: Partial<Rules['nameOwnership']>;
};

export interface ProfileOptions {
  /** Start from this profile (default `patent`). */
  base?: ProfileName;
  rules?: RuleOverrides;
  messageValidityMs?: number;
  answerValidityMs?: number;
  maxValidityMs?: number;
  clockSkewMs?: number;
}

/** A profile by name, or a custom one: a base profile with some rules switched. */
export function createProfile(opts: ProfileName | ProfileOptions = 'patent'): Profile {
  if (typeof opts === 'string') {
    if (opts === 'patent') return PATENT;
    if (opts === 'hardened') return HARDENED;
    throw new ProtocolError('CONFIG_INVALID', `unknown profile ${JSON.stringify(opts)}`);
  }
  const base = createProfile(opts.base ?? 'patent');
  const overrides = opts.rules ?? {};
  const rules: Rules = {
    ...base.rules,
    ...overrides,
    nameOwnership: { ...base.rules.nameOwnership, ...overrides.nameOwnership },
  };
  const profile: Profile = {
    name: opts.rules === undefined ? base.name : 'custom',
    rules,
    messageValidityMs: opts.messageValidityMs ?? base.messageValidityMs,
    answerValidityMs: opts.answerValidityMs ?? base.answerValidityMs,
    maxValidityMs: opts.maxValidityMs ?? base.maxValidityMs,
    clockSkewMs: opts.clockSkewMs ?? base.clockSkewMs,
  };
  validateProfile(profile);
  return profile;
}

function validateProfile(p: Profile): void {
  if (p.rules.answerBinding && !p.rules.freshness) {
    throw new ProtocolError(
      'CONFIG_INVALID',
      'rule answerBinding needs rule freshness (it binds to the request nonce)',
    );
  }
  if (!['overwrite', 'reject-if-exists', 'owner-only'].includes(p.rules.nameOwnership.policy)) {
    throw new ProtocolError('CONFIG_INVALID', `unknown nameOwnership policy ${p.rules.nameOwnership.policy}`);
  }
  for (const k of ['messageValidityMs', 'answerValidityMs', 'maxValidityMs', 'clockSkewMs'] as const) {
    if (!Number.isSafeInteger(p[k]) || p[k] < 0)
      throw new ProtocolError('CONFIG_INVALID', `${k} must be a non-negative integer`);
  }
  if (p.messageValidityMs > p.maxValidityMs || p.answerValidityMs > p.maxValidityMs) {
    throw new ProtocolError('CONFIG_INVALID', 'validity periods must not exceed maxValidityMs');
  }
}
