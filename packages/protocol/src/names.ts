/**
 * Names (PROTO-4): abstract, hierarchical like DNS labels. A Name is lowercase ASCII labels of
 * letters, digits and hyphens (RFC 1123 host-name rules) separated by dots, at most 253 bytes.
 * Validation rejects rather than normalises, so two equal Names are always equal strings.
 */
import { ProtocolError } from './errors.js';
import { LIMITS } from './limits.js';

declare const nameBrand: unique symbol;
/** A validated Name. Only {@link parseName} makes one. */
export type Name = string & { readonly [nameBrand]: true };

const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/**
 * Names seen valid recently: every decoded message carries several, mostly the same few, so the
 * label checks run once per Name rather than once per message. Cleared when full (bounded memory).
 */
const VALID = new Set<string>();
const VALID_MAX = 4096;

/** Validates `text` as a Name, or throws ProtocolError NAME_INVALID saying why. */
export function parseName(text: string): Name {
  if (VALID.has(text)) return text as Name;
  const why = nameProblem(text);
  if (why !== undefined) {
    throw new ProtocolError('NAME_INVALID', `invalid Name ${JSON.stringify(text.slice(0, 80))}: ${why}`, {
      reason: why,
    });
  }
  if (VALID.size >= VALID_MAX) VALID.clear();
  VALID.add(text);
  return text as Name;
}

export function isName(text: string): text is Name {
  return VALID.has(text) || nameProblem(text) === undefined;
}

function nameProblem(text: string): string | undefined {
  if (text.length === 0) return 'empty';
  if (text.length > LIMITS.NAME_MAX_BYTES) return `longer than ${LIMITS.NAME_MAX_BYTES} characters`;
  const labels = text.split('.');
  for (const label of labels) {
    if (label.length === 0) return 'empty label (leading, trailing or double dot)';
    if (label.length > LIMITS.LABEL_MAX_BYTES)
      return `label longer than ${LIMITS.LABEL_MAX_BYTES} characters`;
    if (!LABEL.test(label)) {
      return `label ${JSON.stringify(label)} must be lowercase letters, digits and inner hyphens`;
    }
  }
  return undefined;
}

/** True when `name` equals `zone` or lies below it (`a.b.zone`). */
export function isWithin(name: Name, zone: Name): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** The Name one level up, or undefined for a single label. */
export function parentName(name: Name): Name | undefined {
  const dot = name.indexOf('.');
  return dot < 0 ? undefined : (name.slice(dot + 1) as Name);
}

/**
 * A Name pattern of an ACL (TB-16): `*` matches every Name, `*.zone` every Name strictly below
 * zone, anything else exactly that Name.
 */
export function matchesPattern(name: Name, pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return name.endsWith(pattern.slice(1));
  return name === pattern;
}

export function checkPattern(pattern: string): string {
  if (pattern === '*') return pattern;
  parseName(pattern.startsWith('*.') ? pattern.slice(2) : pattern);
  return pattern;
}
