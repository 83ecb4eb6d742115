/**
 * The dependency direction of ARCHITECTURE.md, checked on the sources: protocol <- emulator <-
 * services <- test, and protocol <- service-host <- services; services never import each other;
 * crypto primitives are imported only in the protocol package's crypto layer (STYLE: crypto is
 * wrapped once).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));

/** Which workspace packages each layer may import. */
const ALLOWED: Record<string, readonly string[]> = {
  'packages/protocol': [],
  'packages/emulator': ['@clefnet/protocol'],
  'packages/service-host': ['@clefnet/protocol'],
  'services/keyserver': ['@clefnet/protocol', '@clefnet/emulator', '@clefnet/service-host'],
  'services/repository': ['@clefnet/protocol', '@clefnet/emulator', '@clefnet/service-host'],
  'services/asd': ['@clefnet/protocol', '@clefnet/emulator', '@clefnet/service-host'],
  'services/anc': ['@clefnet/protocol', '@clefnet/emulator', '@clefnet/service-host'],
};

function sources(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e === 'node_modules' || e === 'dist') continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(sources(p));
    else if (/\.(ts|js|mjs)$/.test(e) && !e.startsWith('vitest.config')) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) found.push(m[1]!);
  return found;
}

describe('dependency direction', () => {
  for (const [pkg, allowed] of Object.entries(ALLOWED)) {
    it(`${pkg} imports only ${allowed.length ? allowed.join(', ') : 'no other workspace'}`, () => {
      const self = `@clefnet/${pkg.split('/')[1]}`;
      const bad: string[] = [];
      for (const file of sources(join(root, pkg))) {
        for (const spec of imports(file)) {
          if (
            spec.startsWith('@clefnet/') &&
            ![...allowed, self].includes(spec.split('/').slice(0, 2).join('/'))
          ) {
            bad.push(`${relative(root, file)} -> ${spec}`);
          }
          if (spec.startsWith('.') && !join(file, '..', spec).startsWith(join(root, pkg))) {
            bad.push(`${relative(root, file)} -> ${spec} (leaves the package)`);
          }
        }
      }
      expect(bad).toEqual([]);
    });
  }

  it('crypto primitives are imported only in packages/protocol/src/crypto/', () => {
    const bad: string[] = [];
    for (const dir of ['packages', 'services', 'bench', 'examples']) {
      for (const file of sources(join(root, dir))) {
        const rel = relative(root, file);
        if (rel.startsWith('packages/protocol/src/crypto/') || rel.includes('/test/')) continue;
        for (const spec of imports(file)) {
          if (spec.startsWith('@noble/') || spec === 'node:crypto' || spec === 'crypto')
            bad.push(`${rel} -> ${spec}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });
});
