/**
 * The fuzzer's deterministic random source (STYLE: no Math.random): splitmix32, so that a seed
 * names one program for ever and a failing run can be replayed from its seed alone.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next 32 random bits, unsigned. */
  next(): number {
    this.state = (this.state + 0x9e37_79b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0_aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a_2d97);
    return (z ^ (z >>> 15)) >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : this.next() % n;
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from nothing');
    return items[this.int(items.length)]!;
  }

  /** One of `items`, each with its weight. */
  weighted<T>(items: readonly (readonly [weight: number, item: T])[]): T {
    let total = 0;
    for (const [w] of items) total += w;
    let r = this.int(total);
    for (const [w, item] of items) {
      if (r < w) return item;
      r -= w;
    }
    return items[items.length - 1]![1];
  }
}

/** The seed of program `index` of a run with seed `seed` (programs are independent of each other). */
export function programSeed(seed: number, index: number): number {
  const r = new Rng((seed ^ Math.imul(index + 1, 0x85eb_ca6b)) >>> 0);
  r.next();
  return r.next();
}
