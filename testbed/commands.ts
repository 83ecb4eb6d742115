/**
 * What the `clefnet` command does, as functions a test or a script can call: `up`, `down`,
 * `status`, `publish`, `deploy`, `send`, `logs`, `events`. Each reports progress through `say` and
 * returns a summary; errors are ClefnetErrors whose message says what to do.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { basename, join } from 'node:path';
import { ClefnetError, type Name, parseName } from '@clefnet/protocol';
import { buildModule, MODULES, type ModuleName } from '../examples/modules/build.js';
import { provision, registrations } from './provision.js';
import {
  clearState,
  ours,
  type RunningProcess,
  readState,
  startProcess,
  stopProcess,
  type TestbedState,
  writeState,
} from './supervisor.js';
import { DEFAULT_TOPOLOGY, layout, loadTopology, type Topology } from './topology.js';

export type Say = (line: string) => void;

/** Keep-alive connections to the services (node:http costs a fraction of fetch's CPU per request). */
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

/** JSON over HTTP with the admin token; a non-2xx answer is a ClefnetError with the service's code. */
export function api<T>(
  state: Pick<TestbedState, 'adminToken'>,
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise<T>((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${state.adminToken}`,
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': payload.length }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let value: unknown;
          try {
            value = text === '' ? undefined : JSON.parse(text);
          } catch {
            value = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(value as T);
          const err = value as { code?: string; message?: string } | undefined;
          reject(
            new ClefnetError(
              (err?.code as ClefnetError['code']) ?? 'INTERNAL',
              `${method} ${path}: ${status} ${err?.message ?? text}`,
            ),
          );
        });
      },
    );
    req.on('error', (e) =>
      reject(new ClefnetError('BAD_STATE', `${base} does not answer (${e.message}): is the testbed up?`)),
    );
    req.end(payload);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The running testbed of `dataDir`, or an error saying to start one. */
export function running(dataDir: string): TestbedState {
  const s = readState(dataDir);
  if (s === undefined || !s.processes.some(ours))
    throw new ClefnetError(
      'BAD_STATE',
      `no testbed is running in ${dataDir}: start one with \`clefnet up\` (or npm start)`,
    );
  return s;
}

function proc(s: TestbedState, key: string): RunningProcess {
  const p = s.processes.find((x) => x.key === key);
  if (p === undefined)
    throw new ClefnetError(
      'UNKNOWN_NAME',
      `no service ${key} in this testbed (there are: ${s.processes.map((x) => x.key).join(', ')})`,
    );
  return p;
}

export interface UpOptions {
  readonly dataDir: string;
  readonly topologyFile?: string;
  /** The processes outlive this one (`clefnet up`); otherwise they are its children (`npm start`). */
  readonly detached: boolean;
  readonly say: Say;
}

export interface UpResult {
  readonly state: TestbedState;
  /** The children (when not detached), for the caller to watch. */
  readonly children: readonly import('node:child_process').ChildProcess[];
}

export async function up(o: UpOptions): Promise<UpResult> {
  const old = readState(o.dataDir);
  if (old?.processes.some(ours))
    throw new ClefnetError(
      'BAD_STATE',
      `a testbed is already running in ${o.dataDir}: \`clefnet down\` first`,
    );
  const topology: Topology = o.topologyFile === undefined ? DEFAULT_TOPOLOGY : loadTopology(o.topologyFile);
  o.say(`provisioning ${o.dataDir} (profile ${topology.profile}, ${topology.ancs.length} ANCs)`);
  const p = provision(topology, o.dataDir);
  const pids = new Map<string, number>();
  const children: import('node:child_process').ChildProcess[] = [];
  const startedAt = Date.now();
  // In the topology's order whatever order they started in: `down` stops them in reverse.
  const state = (): TestbedState => ({
    topology,
    startedAt,
    adminToken: p.adminToken,
    processes: p.processes.flatMap((x) => (pids.has(x.key) ? [{ ...x, pid: pids.get(x.key)! }] : [])),
  });
  const start = async (key: string) => {
    const spec = p.processes.find((x) => x.key === key)!;
    const t0 = Date.now();
    const r = await startProcess(spec, o.dataDir, { detached: o.detached });
    pids.set(key, r.pid);
    children.push(r.child);
    writeState(o.dataDir, state());
    o.say(`  ${key.padEnd(5)} ${spec.name.padEnd(24)} ${spec.http}  (pid ${r.pid}, ${Date.now() - t0} ms)`);
  };
  try {
    // The four services do not need each other to start; the ANCs need KServ1 to know them.
    await startAll(['ks1', 'ks2', 'asd', 'ar'].map(start));
    const regs = registrations(p);
    const ks1 = proc(state(), 'ks1');
    const ks2 = proc(state(), 'ks2');
    for (const t of regs.ks1)
      await api(p, ks1.http, 'POST', '/admin/pairs', { name: t.name, clef: clefHex(t) });
    for (const t of regs.ks2)
      await api(p, ks2.http, 'POST', '/admin/pairs', { name: t.name, clef: clefHex(t) });
    o.say(`  registered ${regs.ks1.length} access pairs at KServ1, ${regs.ks2.length} at KServ2`);
    const ar = proc(state(), 'ar');
    for (const m of MODULES) await publishModule(p, ar.http, m, buildModule(m));
    o.say(`  published ${MODULES.join(', ')} at the AR`);
    await startAll(topology.ancs.map((a) => start(a.name)));
    for (const a of topology.ancs) await waitForKeys(p, proc(state(), a.name), o.say);
  } catch (e) {
    o.say(`stopping what started: ${(e as Error).message}`);
    for (const r of [...state().processes].reverse()) await stopProcess(r.pid);
    clearState(o.dataDir);
    throw e;
  }
  const s = state();
  writeState(o.dataDir, s);
  return { state: s, children };
}

/** Waits for every start, so that a failure cleans up after all of them, not only the ones done. */
async function startAll(starts: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(starts);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

const clefHex = (t: { clef: { sign: Uint8Array; seal: Uint8Array } }) =>
  Buffer.concat([t.clef.sign, t.clef.seal]).toString('hex');

async function publishModule(
  s: Pick<TestbedState, 'adminToken'>,
  ar: string,
  name: string,
  bytes: Uint8Array,
) {
  return api<{ name: string; digest: string; size: number }>(s, ar, 'POST', '/admin/modules', {
    name,
    program: Buffer.from(bytes).toString('base64'),
  });
}

interface VeStatus {
  readonly name: string;
  readonly role: string;
  readonly state: string;
  readonly key?: { readonly name: string; readonly version: number };
  readonly app?: string;
}

async function waitForKeys(
  s: Pick<TestbedState, 'adminToken'>,
  anc: RunningProcess,
  say: Say,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ves = await api<VeStatus[]>(s, anc.http, 'GET', '/admin/ves');
    const nodes = ves.filter((v) => v.role === 'node');
    if (nodes.every((v) => v.key !== undefined)) {
      say(
        `  ${anc.key}: ${nodes.map((v) => `${v.name} holds ${v.key!.name} v${v.key!.version}`).join(', ')}`,
      );
      return;
    }
    if (Date.now() > deadline)
      throw new ClefnetError(
        'TIMEOUT',
        `${anc.key}'s node VEs got no key from KServ1 in 30 s: see clefnet logs ${anc.key}`,
      );
    await sleep(50);
  }
}

export async function down(dataDir: string, say: Say): Promise<number> {
  const s = readState(dataDir);
  if (s === undefined) {
    say(`no testbed in ${dataDir}`);
    return 0;
  }
  // All at once: the services do not need each other to stop, and one slow to stop (SIGKILL after
  // its grace) does not hold the others up.
  const order = [...s.processes].reverse();
  // A pid that is no longer ours (reused after a crash or a reboot) is not signalled.
  const results = await Promise.all(
    order.map((p) => (ours(p) ? stopProcess(p.pid) : Promise.resolve('gone' as const))),
  );
  for (const [i, p] of order.entries()) say(`  ${p.key.padEnd(5)} ${results[i]}`);
  clearState(dataDir);
  return results.filter((how) => how !== 'gone').length;
}

export interface ServiceStatus {
  readonly key: string;
  readonly name: Name;
  readonly pid: number;
  readonly http: string;
  readonly state: 'ready' | 'not-ready' | 'down';
  readonly detail?: string;
}

export async function status(dataDir: string): Promise<ServiceStatus[]> {
  const s = running(dataDir);
  const out: ServiceStatus[] = [];
  for (const p of s.processes) {
    let state: ServiceStatus['state'] = 'down';
    let detail: string | undefined;
    if (ours(p)) {
      try {
        const r = await fetch(`${p.http}/ready`);
        state = r.ok ? 'ready' : 'not-ready';
        if (p.program === 'anc') {
          const ves = await api<VeStatus[]>(s, p.http, 'GET', '/admin/ves');
          detail = ves
            .map((v) => `${v.name}:${v.state}${v.app === undefined ? '' : ` app ${v.app}`}`)
            .join(' ');
        }
      } catch {
        state = 'not-ready';
      }
    }
    out.push({
      key: p.key,
      name: p.name,
      pid: p.pid,
      http: p.http,
      state,
      ...(detail === undefined ? {} : { detail }),
    });
  }
  return out;
}

/** A module: an example's name (built from examples/modules) or a CLFX file. */
export async function publish(
  dataDir: string,
  module: string,
  say: Say,
): Promise<{ name: string; digest: string; size: number }> {
  const s = running(dataDir);
  let name: string;
  let bytes: Uint8Array;
  if ((MODULES as readonly string[]).includes(module)) {
    name = module;
    bytes = buildModule(module as ModuleName);
  } else if (existsSync(module)) {
    name = basename(module).replace(/\.[^.]*$/, '');
    bytes = new Uint8Array(readFileSync(module));
  } else {
    throw new ClefnetError(
      'UNKNOWN_NAME',
      `${module} is neither an example module (${MODULES.join(', ')}) nor a file`,
    );
  }
  const r = await publishModule(s, proc(s, 'ar').http, name, bytes);
  say(`published ${r.name}: ${r.size} bytes, sha256 ${r.digest}`);
  return r;
}

interface Deployment {
  readonly id: number;
  readonly state: string;
  readonly code: string | null;
  readonly digest: string;
  readonly steps: readonly { step: string; kind: string; result: string; detail: string | null }[];
}

/** `<anc>/<ve>`: steps 1-7 at the AR, then the module arriving and starting in the VE. */
export async function deploy(
  dataDir: string,
  module: string,
  target: string,
  say: Say,
): Promise<{ readonly ms: number; readonly console: string }> {
  const s = running(dataDir);
  const [ancKey, ve, ...rest] = target.split('/');
  if (ancKey === undefined || ve === undefined || rest.length > 0)
    throw new ClefnetError('CONFIG_INVALID', `the target is <anc>/<ve>, e.g. anc1/ve1, not ${target}`);
  const anc = proc(s, ancKey);
  if (anc.program !== 'anc') throw new ClefnetError('CONFIG_INVALID', `${ancKey} is not an ANC`);
  const L = layout(s.topology);
  const veName = parseName(`${ve}.${ancKey}.${s.topology.domain}`);
  if (!L.ancs.some((a) => a.nodes.some((n) => n.name === veName)))
    throw new ClefnetError('UNKNOWN_NAME', `${ancKey} has no node VE ${ve}`);
  const secApp = parseName(`${module.replace(/[^a-z0-9-]/g, '-')}-${ancKey}-${ve}.${L.ar}`);
  const ar = proc(s, 'ar');
  // What the VE's console printed before this deployment is not this deployment's.
  const consoleBefore = (await api<{ total: number }>(s, anc.http, 'GET', `/admin/ves/${ve}/console`)).total;
  const t0 = Date.now();
  let d = await api<Deployment>(s, ar.http, 'POST', '/admin/deploy', { module, anc: veName, secApp });
  say(`deployment ${d.id}: ${module} to ${veName} (application ${secApp})`);
  let shown = 0;
  const deadline = Date.now() + 30_000;
  while (d.state === 'resolving' || d.state === 'minting') {
    if (Date.now() > deadline)
      throw new ClefnetError('TIMEOUT', `deployment ${d.id} is still ${d.state} after 30 s`);
    await sleep(20);
    d = await api<Deployment>(s, ar.http, 'GET', `/admin/deployments/${d.id}`);
    for (const st of d.steps.slice(shown))
      say(`  AR  ${st.step.padEnd(9)} ${st.kind.padEnd(9)} ${st.result}${st.detail ? ` ${st.detail}` : ''}`);
    shown = d.steps.length;
  }
  for (const st of d.steps.slice(shown))
    say(`  AR  ${st.step.padEnd(9)} ${st.kind.padEnd(9)} ${st.result}${st.detail ? ` ${st.detail}` : ''}`);
  if (d.state !== 'sent')
    throw new ClefnetError('BAD_STATE', `deployment ${d.id} ${d.state}: ${d.code ?? ''}`);
  for (;;) {
    // The ANC keeps its last 64 deliveries: this one is the one since t0 (one machine, one clock).
    const mods = await api<{ ve: string; digest: string; at: number }[]>(
      s,
      anc.http,
      'GET',
      '/admin/modules',
    );
    if (mods.some((m) => m.ve === ve && m.digest === d.digest && m.at >= t0)) break;
    if (Date.now() > deadline)
      throw new ClefnetError(
        'TIMEOUT',
        `${ancKey} did not install the module in 30 s: see clefnet events ${ancKey}`,
      );
    await sleep(20);
  }
  say(`  ANC steps 8-9 verified the program; delivered to ${ve} through the DTM`);
  let text = '';
  for (;;) {
    const c = await api<{ text: string; total: number }>(s, anc.http, 'GET', `/admin/ves/${ve}/console`);
    text = c.text.slice(Math.max(0, c.text.length - (c.total - consoleBefore)));
    const tail = text.slice(Math.max(0, text.lastIndexOf('nodeos: module loaded')));
    if (/running in ring \d/.test(tail) || /module fault|bad module/.test(tail)) {
      text = tail;
      break;
    }
    if (Date.now() > deadline) break;
    await sleep(20);
  }
  const ms = Date.now() - t0;
  for (const line of text.trim().split('\n')) say(`  ${ve}: ${line}`);
  say(`done in ${ms} ms`);
  return { ms, console: text };
}

/** IPv4 test frames: `count` packets over `flows` source addresses, payload `text #i`. */
export function trafficFrames(outside: Uint8Array, count: number, flows: number, text: string): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const payload = new TextEncoder().encode(`${text} #${i + 1}`);
    const f = new Uint8Array(14 + 20 + payload.length);
    f.set(outside, 0);
    f.set([0x02, 0, 0, 0, 0xaa, 0x01, 0x08, 0x00], 6);
    const len = 20 + payload.length;
    f.set(
      [
        0x45,
        0,
        len >> 8,
        len & 0xff,
        0,
        i & 0xff,
        0,
        0,
        64,
        17,
        0,
        0,
        10,
        0,
        0,
        1 + (i % flows),
        10,
        0,
        1,
        1,
      ],
      14,
    );
    f.set(payload, 34);
    frames.push(f);
  }
  return frames;
}

export interface SendResult {
  readonly sent: number;
  readonly received: readonly Uint8Array[];
}

export async function send(
  dataDir: string,
  ancKey: string,
  o: { readonly count: number; readonly flows: number; readonly text: string; readonly waitMs?: number },
  say: Say,
): Promise<SendResult> {
  const s = running(dataDir);
  const anc = proc(s, ancKey);
  if (anc.program !== 'anc') throw new ClefnetError('CONFIG_INVALID', `${ancKey} is not an ANC`);
  const info = await api<{ outside: string }>(s, anc.http, 'GET', '/admin/info');
  const since = (await api<{ last: number }>(s, anc.http, 'GET', '/admin/traffic?limit=1')).last;
  const outside = Uint8Array.from(info.outside.split(':').map((h) => Number.parseInt(h, 16)));
  const frames = trafficFrames(outside, o.count, o.flows, o.text);
  for (let i = 0; i < frames.length; i += 1024) {
    await api(s, anc.http, 'POST', '/admin/traffic', {
      frames: frames.slice(i, i + 1024).map((f) => Buffer.from(f).toString('hex')),
    });
  }
  say(`sent ${frames.length} IPv4 packets (${o.flows} flows) to ${ancKey} (${info.outside})`);
  const received: Uint8Array[] = [];
  let last = since;
  const deadline = Date.now() + (o.waitMs ?? 3000);
  while (received.length < frames.length && Date.now() < deadline) {
    const r = await api<{ last: number; frames: { seq: number; frame: string }[] }>(
      s,
      anc.http,
      'GET',
      `/admin/traffic?since=${last}`,
    );
    for (const f of r.frames) received.push(new Uint8Array(Buffer.from(f.frame, 'hex')));
    last = r.frames.at(-1)?.seq ?? last;
    if (received.length < frames.length) await sleep(20);
  }
  say(`${received.length} of ${frames.length} came out of ${ancKey}`);
  const first = received[0];
  if (first !== undefined) say(`  first: ${JSON.stringify(new TextDecoder().decode(first.subarray(34)))}`);
  return { sent: frames.length, received };
}

export function logs(dataDir: string, key: string | undefined, lines: number): string {
  const s = readState(dataDir);
  // A service's key is a DNS label (topology.ts): nothing that leaves the logs folder.
  if (key !== undefined && !/^[a-z0-9-]{1,32}$/.test(key))
    throw new ClefnetError('UNKNOWN_NAME', `${JSON.stringify(key)} is not a service of a testbed`);
  const keys = key === undefined ? (s?.processes.map((p) => p.key) ?? []) : [key];
  const out: string[] = [];
  for (const k of keys) {
    const path = join(dataDir, 'logs', `${k}.log`);
    if (!existsSync(path)) throw new ClefnetError('UNKNOWN_NAME', `no log for ${k} in ${dataDir}/logs`);
    const text = readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines);
    out.push(...text.map((l) => `${k.padEnd(5)} ${l}`));
  }
  return out.join('\n');
}

/**
 * Follows the event streams of the given services (all by default) until `signal` aborts; each
 * event is passed to `on` with the key of its service.
 */
export async function events(
  dataDir: string,
  keys: readonly string[],
  filter: { readonly type?: string; readonly kind?: string },
  on: (key: string, event: Record<string, unknown>) => void,
  signal: AbortSignal,
  /** Called once every stream answered (events from then on are seen). */
  onOpen?: () => void,
): Promise<void> {
  const s = running(dataDir);
  const ps = keys.length === 0 ? s.processes : keys.map((k) => proc(s, k));
  const q = new URLSearchParams({
    ...(filter.type === undefined ? {} : { type: filter.type }),
    ...(filter.kind === undefined ? {} : { kind: filter.kind }),
  }).toString();
  let answered = 0;
  await Promise.all(
    ps.map(async (p) => {
      let res: Response;
      try {
        res = await fetch(`${p.http}/admin/events${q === '' ? '' : `?${q}`}`, {
          headers: { authorization: `Bearer ${s.adminToken}` },
          signal,
        });
      } catch (e) {
        if (signal.aborted) return;
        throw e;
      }
      if (!res.ok || res.body === null)
        throw new ClefnetError('BAD_STATE', `${p.key}: events answered ${res.status}`);
      if (++answered === ps.length) onOpen?.();
      const reader = res.body.getReader();
      // A UTF-8 character may be split between chunks (console text).
      const decoder = new TextDecoder();
      let text = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          text += decoder.decode(value, { stream: true });
          let i = text.indexOf('\n\n');
          while (i >= 0) {
            const chunk = text.slice(0, i);
            text = text.slice(i + 2);
            if (chunk.startsWith('data: ')) on(p.key, JSON.parse(chunk.slice(6)) as Record<string, unknown>);
            i = text.indexOf('\n\n');
          }
        }
      } catch (e) {
        if (!signal.aborted) throw e;
      }
    }),
  );
}
