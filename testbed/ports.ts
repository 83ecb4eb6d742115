/** Free loopback ports for a testbed that must not collide with another one (tests, benchmarks). */
import { createServer } from 'node:net';

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** A base port from which `n` consecutive ports are free on `host` now (20000..39999). */
export async function freePortBlock(n: number, host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 100; tries++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await portFree(base + i, host);
    if (ok) return base;
  }
  throw new Error(`no ${n} free consecutive ports on ${host}`);
}
