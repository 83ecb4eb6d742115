/**
 * Rule `typeTags` (TB-14, SPEC §17.3 "message-type/step tags"; stops ATK-8 and ATK-10).
 *
 * The patent has no message types: a receiver takes a payload field by field as whatever the step
 * expects. Tags exist on the wire only because some encoding is needed. With the rule off, a tag
 * merely picks among the types a receiver is ready for, and any other tag is read as the first
 * (default) one. With the rule on, the tag must name one of the expected types exactly.
 */
import { ProtocolError } from '../errors.js';
import type { Rules } from '../profile.js';
import { type BodyType, TAGS } from '../tags.js';

export function selectBodyType<T extends BodyType>(
  rules: Rules,
  tag: string,
  expected: readonly [T, ...T[]],
): T {
  for (const t of expected) if (TAGS[t] === tag) return t;
  if (rules.typeTags) {
    throw new ProtocolError(
      'TYPE_MISMATCH',
      `tag ${JSON.stringify(tag)} where ${expected.map((t) => TAGS[t]).join(' or ')} is expected`,
      { tag },
    );
  }
  return expected[0];
}
