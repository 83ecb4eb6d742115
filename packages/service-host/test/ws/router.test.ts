import type { Name } from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import type { Link } from '../../src/ws/link.js';
import { createRouter } from '../../src/ws/router.js';

function fakeLink(id: string): Link & { usable: boolean } {
  return { id, usable: true, send: () => true };
}
const ks1 = 'ks1.clefnet.test' as Name;
const ar = 'ar.clefnet.test' as Name;

function setup() {
  const dials: string[] = [];
  const router = createRouter({
    directory: new Map([[ks1, 'ws://ks1/ws']]),
    dial: (url, peer) => {
      dials.push(`${peer} ${url}`);
      return fakeLink(`out-${dials.length}`);
    },
  });
  return { router, dials };
}

describe('router', () => {
  it('sends an answer to the link its request came in on, once, then falls back to the directory', () => {
    const { router } = setup();
    const a = fakeLink('in-1');
    router.learn(ar, 'c1', a);
    expect(router.route(ar, 'c1')?.id).toBe('in-1');
    expect(router.route(ar, 'c1')).toBeUndefined();
  });

  it('keys routes by Name and corr: another corr of the same Name has no route', () => {
    const { router } = setup();
    router.learn(ar, 'c1', fakeLink('in-1'));
    expect(router.route(ar, 'c2')).toBeUndefined();
    expect(router.route(ar, 'c1')?.id).toBe('in-1');
  });

  it('copies of one request (same Name and corr) are answered on their own links, in arrival order', () => {
    const { router } = setup();
    const a = fakeLink('in-1');
    router.learn(ar, 'c1', a);
    router.learn(ar, 'c1', fakeLink('in-2'));
    router.learn(ar, 'c1', a);
    expect([1, 2, 3, 4].map(() => router.route(ar, 'c1')?.id)).toEqual(['in-1', 'in-2', 'in-1', undefined]);
  });

  it('a closed link drops out of a queue without disturbing the others', () => {
    const { router } = setup();
    const a = fakeLink('in-1');
    router.learn(ar, 'c1', a);
    router.learn(ar, 'c1', fakeLink('in-2'));
    router.forget(a);
    expect([1, 2].map(() => router.route(ar, 'c1')?.id)).toEqual(['in-2', undefined]);
  });

  it('skips a route whose link is no longer usable, and forgets every route of a closed link', () => {
    const { router } = setup();
    const a = fakeLink('in-1');
    router.learn(ar, 'c1', a);
    router.learn(ar, 'c2', a);
    a.usable = false;
    expect(router.route(ar, 'c1')).toBeUndefined();
    router.forget(a);
    a.usable = true;
    expect(router.route(ar, 'c2')).toBeUndefined();
  });

  it('dials a directory entry once and reuses the link while it is usable; redials after it closed', () => {
    const { router, dials } = setup();
    const first = router.route(ks1, 'x');
    expect(first?.id).toBe('out-1');
    expect(router.route(ks1, 'y')?.id).toBe('out-1');
    (first as Link & { usable: boolean }).usable = false;
    expect(router.route(ks1, 'z')?.id).toBe('out-2');
    expect(dials).toEqual([`${ks1} ws://ks1/ws`, `${ks1} ws://ks1/ws`]);
  });

  it('has nothing for a Name with no route and no directory entry, nor for an empty Name', () => {
    const { router, dials } = setup();
    expect(router.route(ar, '')).toBeUndefined();
    expect(router.route('', '')).toBeUndefined();
    expect(dials).toEqual([]);
  });
});
