/**
 * Starting and stopping a testbed's processes. Each service runs as its own Node process
 * (`node --conditions=source --import tsx services/<program>/src/main.ts <config>`), stdout to
 * `<data>/logs/<key>.out` (its one listen line) and stderr to `<data>/logs/<key>.log` (pino). What
 * runs is written to `<data>/testbed.json`, so `down`, `status` and the other commands find it
 * from any shell.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClefnetError } from '@clefnet/protocol';
import type { ProcessSpec } from './provision.js';
import type { Topology } from './topology.js';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const STATE_FILE = 'testbed.json';

export interface RunningProcess extends ProcessSpec {
  readonly pid: number;
}

export interface TestbedState {
  readonly topology: Topology;
  readonly startedAt: number;
  readonly adminToken: string;
  readonly processes: readonly RunningProcess[];
}

export function readState(dataDir: string): TestbedState | undefined {
  const path = join(dataDir, STATE_FILE);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as TestbedState;
}

export function writeState(dataDir: string, state: TestbedState): void {
  writeFileSync(join(dataDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

export function clearState(dataDir: string): void {
  rmSync(join(dataDir, STATE_FILE), { force: true });
}

/**
 * Is this testbed process still the one we started? A pid from the state file may have been reused
 * after a crash or a reboot: the process must also have this service's config on its command line
 * (Linux /proc; elsewhere the pid alone).
 */
export function ours(p: { readonly pid: number; readonly config: string }): boolean {
  if (!alive(p.pid)) return false;
  try {
    return readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').includes(p.config);
  } catch {
    return process.platform !== 'linux';
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Extra Node options for every service (CLEFNET_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=prof`). */
function nodeArgs(): string[] {
  const v = process.env.CLEFNET_NODE_ARGS?.trim();
  return v === undefined || v === '' ? [] : v.split(/\s+/);
}

/**
 * Starts one service and waits for its listen line. `detached`: it outlives this process (its own
 * process group); otherwise it is this process's child.
 */
export async function startProcess(
  spec: ProcessSpec,
  dataDir: string,
  opts: { readonly detached: boolean; readonly timeoutMs?: number },
): Promise<{ readonly pid: number; readonly child: ChildProcess }> {
  const logs = join(dataDir, 'logs');
  mkdirSync(logs, { recursive: true });
  const outPath = join(logs, `${spec.key}.out`);
  const errPath = join(logs, `${spec.key}.log`);
  rmSync(outPath, { force: true });
  const out = openSync(outPath, 'w');
  const err = openSync(errPath, 'a');
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs(),
      '--conditions=source',
      '--import',
      'tsx',
      join(ROOT, 'services', spec.program, 'src', 'main.ts'),
      spec.config,
    ],
    { cwd: ROOT, stdio: ['ignore', out, err], detached: opts.detached },
  );
  closeSync(out);
  closeSync(err);
  if (opts.detached) child.unref();
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    const text = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
    const line = text.split('\n').find((l) => l.startsWith('{'));
    if (line !== undefined) {
      const listen = JSON.parse(line) as { pid: number; http: string };
      return { pid: listen.pid, child };
    }
    if (exited !== undefined) {
      const tail = readFileSync(errPath, 'utf8').trim().split('\n').slice(-3).join('\n');
      throw new ClefnetError('BAD_STATE', `${spec.key} (${spec.program}) exited with ${exited}: ${tail}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new ClefnetError('TIMEOUT', `${spec.key} did not listen within ${opts.timeoutMs ?? 30_000} ms`);
    }
    await sleep(50);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(pid: number, graceMs = 5000): Promise<'stopped' | 'killed' | 'gone'> {
  if (!alive(pid)) return 'gone';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'gone';
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return 'stopped';
    await sleep(25);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'stopped';
  }
  while (alive(pid)) await sleep(25);
  return 'killed';
}
