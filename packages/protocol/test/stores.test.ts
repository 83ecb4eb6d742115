import { createMemoryKeyServerStore, KEY_SERVER_STORE_CASES } from '@clefnet/protocol';
import { describe, it } from 'vitest';

describe('KeyServerStore compliance: in-memory store', () => {
  for (const c of KEY_SERVER_STORE_CASES) it(c.name, () => c.run(() => createMemoryKeyServerStore()));
});
