/**
 * `npm start` and the `clefnet` command as a user runs them: child processes, their output checked.
 * `npm start` brings the testbed up in the foreground and prints where everything listens and what
 * to try; `clefnet status` and `clefnet deploy` work against it from another process; Ctrl-C (SIGINT
 * to the process group) stops every service. Errors say what to do.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePortBlock } from '../testbed/ports.js';
import { readState } from '../testbed/supervisor.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) continue;
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function clefnet(...args: string[]) {
  const r = spawnSync(join(root, 'bin', 'clefnet'), args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'clefnet-cli-'));
  dirs.push(d);
  return d;
}

describe('npm start', { timeout: 120_000 }, () => {
  it('brings the testbed up in the foreground; clefnet works against it; Ctrl-C stops it all', async () => {
    const dir = tmp();
    const data = join(dir, 'data');
    const topology = join(dir, 'topology.yaml');
    writeFileSync(topology, `basePort: ${await freePortBlock(6)}\n`);
    const npm = spawn('npm', ['start', '--silent', '--', topology, '--data', data], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(npm);
    let out = '';
    npm.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const deadline = Date.now() + 60_000;
    while (!out.includes('Ctrl-C stops it')) {
      if (npm.exitCode !== null || Date.now() > deadline)
        throw new Error(`npm start did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const lines = out.trim().split('\n');
    expect(lines[0]).toBe(`provisioning ${data} (profile patent, 2 ANCs)`);
    for (const key of ['ks1', 'ks2', 'asd', 'ar', 'anc1', 'anc2'])
      expect(out).toMatch(
        new RegExp(
          `\\n {2}${key} +${key}\\.clefnet\\.test +http://127\\.0\\.0\\.1:\\d+ +\\(pid \\d+, \\d+ ms\\)`,
        ),
      );
    expect(out).toContain('  registered 5 access pairs at KServ1, 2 at KServ2\n');
    expect(out).toContain('  published billing, transformer at the AR\n');
    expect(out).toContain('  anc1: ve1 holds ve1.anc1.clefnet.test v1\n');
    expect(out).toContain('  anc2: ve1 holds ve1.anc2.clefnet.test v1\n');
    expect(out).toMatch(
      /testbed up in \d+ ms \(data in .*\); try:\n {2}npm run clefnet -- deploy billing anc1\/ve1\n/,
    );

    const status = clefnet('status', '--data', data);
    expect(status.code).toBe(0);
    expect(
      status.out
        .trim()
        .split('\n')
        .map((l) => l.split(/ +/).slice(0, 5).join(' ')),
    ).toEqual(
      ['ks1', 'ks2', 'asd', 'ar', 'anc1', 'anc2'].map((k) =>
        expect.stringMatching(new RegExp(`^${k} ${k}\\.clefnet\\.test pid \\d+ ready$`)),
      ),
    );
    const dep = clefnet('deploy', 'transformer', 'anc2/ve1', '--data', data);
    expect(dep.err).toBe('');
    expect(dep.code).toBe(0);
    expect(dep.out).toContain('  AR  M7        sent      ok\n');
    expect(dep.out).toContain('  ve1: transformer: running in ring 3\n');
    const sent = clefnet('send', 'anc2', '--count', '3', '--text', 'shout', '--data', data);
    expect(sent.out).toContain('3 of 3 came out of anc2\n  first: "SHOUT #1"\n');

    const pids = readState(data)!.processes.map((p) => p.pid);
    const exited = new Promise<number | null>((r) => npm.once('exit', (code) => r(code)));
    process.kill(-npm.pid!, 'SIGINT');
    await exited;
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    // npm leaves at once; the services (SIGINT too) and clefnet's own stop finish within seconds.
    const gone = Date.now() + 30_000;
    while ((pids.some(alive) || readState(data) !== undefined) && Date.now() < gone)
      await new Promise((r) => setTimeout(r, 50));
    expect(pids.filter(alive)).toEqual([]);
    expect(readState(data)).toBeUndefined();
  });
});

describe('clefnet errors', () => {
  it('says what to do', () => {
    const data = join(tmp(), 'data');
    const none = clefnet('deploy', 'billing', 'anc1/ve1', '--data', data);
    expect(none.code).toBe(1);
    expect(none.err).toBe(
      `clefnet: BAD_STATE: no testbed is running in ${data}: start one with \`clefnet up\` (or npm start)\n`,
    );
    const unknown = clefnet('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.out).toMatch(/^usage: clefnet <command>/);
    const file = join(tmp(), 'bad.yaml');
    writeFileSync(file, 'ancs:\n  - name: anc1\n    firewall: D\n');
    const bad = clefnet('up', file, '--data', data);
    expect(bad.code).toBe(1);
    expect(bad.err).toBe('clefnet: CONFIG_INVALID: topology: ancs[0].firewall must be A, B or C\n');
    const count = clefnet('send', 'anc1', '--count', '0', '--data', data);
    expect(count.err).toBe('clefnet: CONFIG_INVALID: --count must be 1..100000\n');
  });
});
