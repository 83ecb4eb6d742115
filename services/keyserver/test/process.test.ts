/**
 * The process entry (src/main.ts) as a child process: it prints where it listens, is killed with
 * SIGKILL in the middle of minting traffic, and restarts on the same SQLite file, which holds only
 * whole bindings, including every one whose triple was answered before the kill.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accessPairToJson, encodeClef, type Name, toHex, tripleToJson } from '@clefnet/protocol';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DB_FILE, type ListenAddress } from '../src/index.js';
import { AUTH, httpJson, known, N, PartyLink, probeAs, TOKEN, TRIPLES, tempDir, until } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface Child {
  readonly proc: ChildProcess;
  readonly address: ListenAddress & { service: string; name: string; pid: number };
  readonly stdout: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startProcess(config: string): Promise<Child> {
  const proc = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', 'services/keyserver/src/main.ts', config],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('exit', (code, signal) => r({ code, signal })),
  );
  cleanup.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  const line = await until(
    () => (out.includes('\n') ? out.split('\n')[0] : undefined),
    20_000,
    `the listen line (stderr: ${err})`,
  );
  return { proc, address: JSON.parse(line), stdout: () => out, exited };
}

describe('the key server process', () => {
  it('killed with SIGKILL while minting, restarts with only whole bindings, then stops on SIGTERM', async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const config = join(dir.path, 'ks1.json');
    writeFileSync(
      config,
      JSON.stringify({
        identity: tripleToJson(TRIPLES.ks1),
        serves: ['clef', 'mint'],
        nameOwnership: { policy: 'owner-only' },
        dataDir: 'data',
        adminToken: TOKEN,
        logLevel: 'warn',
      }),
    );
    const first = await startProcess(config);
    expect(first.address).toMatchObject({ service: 'keyserver', name: N.ks1, pid: first.proc.pid });
    expect(first.address.ws).toBe(`ws://127.0.0.1:${first.address.port}/ws`);
    await httpJson('POST', `${first.address.http}/admin/pairs`, accessPairToJson(TRIPLES.machine), AUTH);

    // Minting traffic: 16 requests in flight, each answer sends the next, until the kill.
    const machine = probeAs(TRIPLES.machine, [known(TRIPLES.ks1, ['clef', 'mint'])], Date.now);
    const link = new PartyLink(machine);
    cleanup.push(() => link.close());
    await link.connect(N.ks1, first.address.ws);
    const sent: Name[] = [];
    const next = () => {
      const name = `v${sent.length}.anc1.clefnet.test` as Name;
      sent.push(name);
      link.post(machine.newQuery(known(TRIPLES.ks1, ['mint']), name));
    };
    let killed = false;
    const answered = new Map<string, string>();
    const onAnswer = setInterval(() => {
      for (const a of machine.answers.splice(0)) {
        if (a.body.type === 'triple') answered.set(a.body.triple.name, toHex(encodeClef(a.body.triple.clef)));
        if (!killed) next();
      }
    }, 1);
    cleanup.push(() => clearInterval(onAnswer));
    for (let i = 0; i < 16; i++) next();
    await until(() => (answered.size >= 40 ? true : undefined), 15_000, '40 minted triples');
    first.proc.kill('SIGKILL');
    killed = true;
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    clearInterval(onAnswer);
    expect(sent.length).toBeGreaterThan(answered.size);

    // The file as the kill left it: intact, every row whole.
    const dbPath = join(dir.path, 'data', DB_FILE);
    const db = new Database(dbPath);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();

    const second = await startProcess(config);
    const res = await httpJson('GET', `${second.address.http}/admin/bindings`, undefined, AUTH);
    expect(res.status).toBe(200);
    const rows = (
      res.body as { bindings: { name: string; clef: string; owner: string | null; revokedAt: null }[] }
    ).bindings;
    const minted = rows.filter((r) => r.name !== N.machine);
    // Every triple the client received is stored, with its exact Clef and owner ...
    for (const [name, clef] of answered) {
      expect(
        minted.find((r) => r.name === name),
        name,
      ).toMatchObject({ clef, owner: N.machine, revokedAt: null });
    }
    // ... and nothing else is but Names that were asked for (answered or not before the kill).
    for (const r of minted) {
      expect(sent.includes(r.name as Name), r.name).toBe(true);
      expect(r.owner, r.name).toBe(N.machine);
      expect(r.clef, r.name).toMatch(/^[0-9a-f]{128}$/);
    }
    expect(minted.length).toBeGreaterThanOrEqual(answered.size);
    expect(minted.length).toBeLessThanOrEqual(sent.length);

    // The restarted process answers from what survived, then stops cleanly on SIGTERM.
    const [someName, someClef] = [...answered][0]!;
    const ar = probeAs(TRIPLES.machine, [known(TRIPLES.ks1, ['clef'])], Date.now);
    const link2 = new PartyLink(ar);
    cleanup.push(() => link2.close());
    await link2.connect(N.ks1, second.address.ws);
    link2.post(ar.clefQuery(known(TRIPLES.ks1, ['clef']), someName as Name));
    const answer = await until(() => ar.answers[0]);
    if (answer.body.type !== 'clef-answer') throw new Error(answer.tag);
    expect(toHex(encodeClef(answer.body.clef))).toBe(someClef);
    second.proc.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(second.stdout().trim().split('\n')).toHaveLength(1);
  });
});
