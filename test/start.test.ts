/** `npm run exchange` (examples/exchange.ts) as a user runs it: a child process, its transcript checked. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));

function start(...args: string[]) {
  const r = spawnSync(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', 'examples/exchange.ts', ...args],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  );
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('npm run exchange', () => {
  it('patent: runs the exchange and shows the ATK-1 replay re-installing the program', () => {
    const { code, out, err } = start('--profile', 'patent');
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('clefnet in-memory exchange: profile patent, backend node, seed clefnet');
    expect(out).toMatch(/deployment [0-9a-f]{16}: sent; programs installed in the VE: 1/);
    expect(out).toContain('the ASD answered "ok 1"');
    expect(out).toMatch(
      /== ATK-1[^\n]*\n {2}INJECTED[^\n]*\n {2}M9a[^\n]*\n {2}CLEF-ANS[^\n]*\n {2}programs installed in the VE: 2\n/,
    );
  });

  it('hardened: the same run refuses the replay with REPLAY before any key-server round trip', () => {
    const { code, out } = start('--profile', 'hardened', '--backend', 'noble');
    expect(code).toBe(0);
    expect(out).toContain('profile hardened, backend noble');
    expect(out).toMatch(
      /== ATK-1[^\n]*\n {2}INJECTED[^\n]*\n {2}!! ve1\.anc1\.clefnet\.test refused: REPLAY[^\n]*\n {2}programs installed in the VE: 1\n/,
    );
  });

  it('says what is wrong with a bad option and exits 2', () => {
    const { code, err } = start('--profile', 'nope');
    expect(code).toBe(2);
    expect(err).toBe('--profile must be patent or hardened, not nope\n');
  });
});

describe('npm run tinyos', () => {
  it('boots tinyos and prints its console, the same transcript the guest test checks', () => {
    const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', 'examples/tinyos.ts'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status).toBe(0);
    const expected = readFileSync(new URL('guests/tinyos/expected.txt', `file://${root}`), 'utf8');
    expect(r.stdout).toBe(`${expected}\n[machine stopped: halt after 98241 instructions, 406 idle]\n`);
  });
});
