/**
 * The compliance suite every {@link KeyServerStore} implementation runs (STYLE: one interface, one
 * reusable suite). Framework-free: each case is a function that throws (node:assert) on failure, so
 * vitest in this package and the services' own tests run the same cases over their stores.
 */
import assert from 'node:assert/strict';
import type { Clef } from '../identity.js';
import { type Name, parseName } from '../names.js';
import type { Binding, KeyServerStore } from '../stores.js';

export interface StoreCase {
  readonly name: string;
  readonly run: (fresh: () => KeyServerStore) => void;
}

const clef = (n: number): Clef => ({
  sign: new Uint8Array(32).fill(n),
  seal: new Uint8Array(32).fill(n + 1),
});
const bind = (name: string, n: number, owner: Name | null = null, at = 1000): Binding => ({
  name: parseName(name),
  clef: clef(n),
  owner,
  createdAt: at,
  revokedAt: null,
});
const plain = (b: Binding | undefined) =>
  b === undefined
    ? undefined
    : { ...b, clef: { sign: Array.from(b.clef.sign), seal: Array.from(b.clef.seal) } };

export const KEY_SERVER_STORE_CASES: readonly StoreCase[] = [
  {
    name: 'get of an unknown Name is undefined',
    run: (fresh) => assert.equal(fresh().get(parseName('nobody.test')), undefined),
  },
  {
    name: 'put then get returns the same binding, bytes and all',
    run: (fresh) => {
      const s = fresh();
      const b = bind('a.test', 3, parseName('owner.test'), 1234);
      s.put(b);
      assert.deepEqual(plain(s.get(b.name)), plain(b));
    },
  },
  {
    name: 'put replaces the binding of the same Name',
    run: (fresh) => {
      const s = fresh();
      s.put(bind('a.test', 3));
      s.put(bind('a.test', 9, parseName('b.test'), 2000));
      assert.deepEqual(
        plain(s.get(parseName('a.test'))),
        plain(bind('a.test', 9, parseName('b.test'), 2000)),
      );
      assert.equal(s.list().length, 1);
    },
  },
  {
    name: 'revoke marks the binding with the time and keeps it',
    run: (fresh) => {
      const s = fresh();
      s.put(bind('a.test', 3));
      assert.equal(s.revoke(parseName('a.test'), 5000), true);
      assert.equal(s.get(parseName('a.test'))?.revokedAt, 5000);
      assert.deepEqual(Array.from(s.get(parseName('a.test'))!.clef.sign), Array.from(clef(3).sign));
    },
  },
  {
    name: 'revoke of an unknown Name is false and stores nothing',
    run: (fresh) => {
      const s = fresh();
      assert.equal(s.revoke(parseName('a.test'), 5000), false);
      assert.deepEqual(s.list(), []);
    },
  },
  {
    name: 'list returns every binding ordered by Name',
    run: (fresh) => {
      const s = fresh();
      for (const [n, i] of [
        ['c.test', 1],
        ['a.test', 2],
        ['b.a.test', 3],
      ] as const)
        s.put(bind(n, i));
      assert.deepEqual(
        s.list().map((b) => b.name),
        ['a.test', 'b.a.test', 'c.test'],
      );
    },
  },
  {
    name: 'a stored binding does not change when the caller later mutates its arrays',
    run: (fresh) => {
      const s = fresh();
      const b = bind('a.test', 3);
      s.put(b);
      const before = Array.from(s.get(b.name)!.clef.sign);
      (b.clef.sign as Uint8Array).fill(0);
      // A copying store keeps the old bytes; an in-memory store shares them. Either way the Clef
      // it returns must be the one last put or the one stored, never a mix.
      const after = Array.from(s.get(b.name)!.clef.sign);
      assert.ok(after.every((x) => x === 0) || after.join() === before.join(), 'clef bytes mixed');
    },
  },
];
