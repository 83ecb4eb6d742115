/**
 * Provisioning a testbed's data folder from its topology (KEY-12: every party gets its triple and
 * the access pairs it needs before anything runs):
 *
 * ```
 * <data>/testbed.json           what `up` started: topology, admin token, each service's URLs and pid
 * <data>/keys/<Name>.json       every authority triple (0600), made once and kept
 * <data>/<service>/config.json  ks1, ks2, ar, asd: the service's config; its SQLite file beside it
 * <data>/<anc>/config.json      an ANC: machine.nvram, and per VE <ve>/{profile.json, rom.bin, nvram.bin}
 * <data>/logs/<service>.log     each process's stderr (pino lines)
 * ```
 *
 * Guest images are built here (the firewall guest with this ANC's rules, nodeos with the agent's
 * address) and rebuilt on every `up`, so a changed guest source takes effect; keys and databases
 * are kept, so a restarted testbed keeps its registrations, modules and records.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_MAC } from '@clefnet/anc';
import { ETHERTYPE_IPV4, ETHERTYPE_TRANSACTION, veMac } from '@clefnet/emulator';
import {
  type AuthorityTriple,
  accessPairToJson,
  generateTriple,
  type Name,
  nodeBackend,
  systemRandom,
  type TripleJson,
  tripleFromJson,
  tripleToJson,
} from '@clefnet/protocol';
import { buildFirewall } from '../guests/firewall/build.js';
import { buildNodeOs } from '../guests/nodeos/build.js';
import { type Layout, layout, type Topology } from './topology.js';

export const SERVICES = ['ks1', 'ks2', 'asd', 'ar'] as const;
export type ServiceKey = (typeof SERVICES)[number];

/** What `up` needs to start and talk to every process. */
export interface Provisioned {
  readonly dataDir: string;
  readonly topology: Topology;
  readonly layout: Layout;
  readonly adminToken: string;
  readonly triples: ReadonlyMap<Name, AuthorityTriple>;
  /** Each process: which service program, its config file, its ports. */
  readonly processes: readonly ProcessSpec[];
}

export interface ProcessSpec {
  /** `ks1`, `ks2`, `asd`, `ar`, or the ANC's name. */
  readonly key: string;
  readonly name: Name;
  readonly program: 'keyserver' | 'asd' | 'repository' | 'anc';
  readonly config: string;
  readonly http: string;
  readonly ws: string;
}

const TOKEN_FILE = 'admin-token';

function writeSecret(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** The triple of `name`, made once and kept in `<data>/keys/`. */
function triple(dataDir: string, name: Name): AuthorityTriple {
  const dir = join(dataDir, 'keys');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${name}.json`);
  if (existsSync(path))
    return tripleFromJson(nodeBackend, JSON.parse(readFileSync(path, 'utf8')) as TripleJson);
  const t = generateTriple(nodeBackend, systemRandom, name);
  writeSecret(path, `${JSON.stringify(tripleToJson(t), null, 2)}\n`);
  return t;
}

function adminToken(dataDir: string): string {
  const path = join(dataDir, TOKEN_FILE);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const token = Buffer.from(systemRandom(24)).toString('hex');
  writeSecret(path, `${token}\n`);
  return token;
}

function writeJson(path: string, value: unknown, secret = false): void {
  mkdirSync(join(path, '..'), { recursive: true });
  if (secret) writeSecret(path, `${JSON.stringify(value, null, 2)}\n`);
  else writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function provision(topology: Topology, dataDir: string): Provisioned {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const L = layout(topology);
  const token = adminToken(dataDir);
  const triples = new Map<Name, AuthorityTriple>();
  const t = (name: Name) => {
    const x = triples.get(name) ?? triple(dataDir, name);
    triples.set(name, x);
    return x;
  };
  const url = (port: number) => ({
    http: `http://${topology.host}:${port}`,
    ws: `ws://${topology.host}:${port}/ws`,
  });
  const listen = (port: number) => ({ host: topology.host, port });
  const pair = (name: Name, scopes: string[]) => ({ ...accessPairToJson(t(name)), scopes });
  const common = {
    profile: topology.profile,
    adminToken: token,
    backend: 'node',
    logLevel: topology.logLevel,
  };
  const store = { synchronous: topology.synchronous };
  const processes: ProcessSpec[] = [];
  const add = (key: string, name: Name, program: ProcessSpec['program'], config: unknown, port: number) => {
    const path = join(dataDir, key, 'config.json');
    // A service's config holds its Key and the admin token.
    writeJson(path, config, true);
    processes.push({ key, name, program, config: path, ...url(port) });
  };

  add(
    'ks1',
    L.ks1,
    'keyserver',
    {
      ...common,
      identity: tripleToJson(t(L.ks1)),
      serves: ['clef', 'mint'],
      ...store,
      nameOwnership: { policy: 'owner-only' },
      dataDir: '.',
      listen: listen(L.ports.ks1),
    },
    L.ports.ks1,
  );
  add(
    'ks2',
    L.ks2,
    'keyserver',
    {
      ...common,
      identity: tripleToJson(t(L.ks2)),
      serves: ['mint', 'relay'],
      ...store,
      // The AR deploys again under the same application Name: it owns it.
      nameOwnership: { policy: 'owner-only' },
      keyServers: [pair(L.ks1, ['clef'])],
      directory: { [L.ks1]: url(L.ports.ks1).ws, [L.asd]: url(L.ports.asd).ws },
      dataDir: '.',
      listen: listen(L.ports.ks2),
    },
    L.ports.ks2,
  );
  add(
    'asd',
    L.asd,
    'asd',
    {
      ...common,
      identity: tripleToJson(t(L.asd)),
      keyServers: [pair(L.ks2, ['relay'])],
      ...store,
      directory: { [L.ks2]: url(L.ports.ks2).ws },
      dataDir: '.',
      listen: listen(L.ports.asd),
    },
    L.ports.asd,
  );
  const veDirectory: Record<string, string> = {};
  for (const a of L.ancs) for (const n of a.nodes) veDirectory[n.name] = url(a.port).ws;
  add(
    'ar',
    L.ar,
    'repository',
    {
      ...common,
      identity: tripleToJson(t(L.ar)),
      keyServers: [pair(L.ks1, ['clef']), pair(L.ks2, ['mint'])],
      mintLocation: url(L.ports.ks2).ws,
      stepOrder: topology.stepOrder,
      ...store,
      directory: { [L.ks1]: url(L.ports.ks1).ws, [L.ks2]: url(L.ports.ks2).ws, ...veDirectory },
      dataDir: '.',
      listen: listen(L.ports.ar),
    },
    L.ports.ar,
  );
  for (const a of L.ancs) {
    const dir = join(dataDir, a.spec.name);
    // VE 1 is the firewall, VEs 2.. the nodes (ids follow the order of `ves`).
    const fwRom = buildFirewall({
      outbound: [ETHERTYPE_IPV4],
      inbound: [ETHERTYPE_IPV4],
      inboundTo: veMac(2),
      inboundRoutes: [{ type: ETHERTYPE_TRANSACTION, to: new Uint8Array(AGENT_MAC) }],
    });
    const nodeRom = buildNodeOs({ agent: new Uint8Array(AGENT_MAC) });
    const ve = (name: string, rom: Uint8Array, extra: Record<string, unknown> = {}) => {
      mkdirSync(join(dir, name), { recursive: true });
      writeFileSync(join(dir, name, 'rom.bin'), rom);
      writeJson(join(dir, name, 'profile.json'), {
        name,
        memory_bytes: 1 << 20,
        boot_rom_image: 'rom.bin',
        nvram_image: 'nvram.bin',
        ...extra,
      });
      return `${name}/profile.json`;
    };
    const ves = [
      { profile: ve('fw', fwRom), role: 'firewall' },
      ...a.nodes.map((n) => ({
        profile: ve(n.ve, nodeRom, { ...n.profile, key_trap: { name: n.name } }),
        role: 'node',
        senders: [L.ar],
      })),
    ];
    add(
      a.spec.name,
      a.machine,
      'anc',
      {
        ...common,
        identity: tripleToJson(t(a.machine)),
        keyServers: [pair(L.ks1, ['clef', 'mint']), pair(L.ks2, ['relay'])],
        firewall: { config: a.spec.firewall, confirmOutbound: a.spec.confirmOutbound },
        ves,
        asd: L.asd,
        directory: { [L.ks1]: url(L.ports.ks1).ws, [L.ks2]: url(L.ports.ks2).ws },
        dataDir: '.',
        listen: listen(a.port),
      },
      a.port,
    );
  }
  return { dataDir, topology, layout: L, adminToken: token, triples, processes };
}

/**
 * The access pairs each key server must hold (KEY-12): KServ1 knows the AR, KServ2, the ASD and
 * every machine; KServ2 knows the ASD and the AR (so it verifies step 5 without asking KServ1,
 * PROTO-19's "may first have to obtain"). Registering is idempotent (a binding is replaced by
 * itself).
 */
export function registrations(p: Provisioned): {
  readonly ks1: AuthorityTriple[];
  readonly ks2: AuthorityTriple[];
} {
  const L = p.layout;
  const t = (n: Name) => p.triples.get(n)!;
  return {
    ks1: [t(L.ar), t(L.ks2), t(L.asd), ...L.ancs.map((a) => t(a.machine))],
    ks2: [t(L.asd), t(L.ar)],
  };
}
