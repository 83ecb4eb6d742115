/** Payload types and their wire tags (TB-14). */
export const TAGS = {
  'clef-query': 'CLEF?',
  'clef-answer': 'CLEF',
  'new-query': 'NEW?',
  triple: 'TRIPLE',
  program: 'PROG',
  handover: 'HANDOVER',
  'channel-open': 'OPEN',
  'channel-from': 'FROM',
  'channel-reply': 'REPLY',
  error: 'ERR',
} as const;

export type BodyType = keyof typeof TAGS;
