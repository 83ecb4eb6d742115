/**
 * Topology files: which services a testbed runs, its ANCs with their VEs, the protocol profile and
 * where everything listens. YAML (or JSON); every field is checked and a bad one is a
 * CONFIG_INVALID error naming it.
 *
 * ```yaml
 * profile: patent            # or hardened
 * domain: clefnet.test       # Names: ks1.<domain>, ar.<domain>, <anc>.<domain>, <ve>.<anc>.<domain>
 * host: 127.0.0.1
 * basePort: 7100             # ks1, ks2, ar, asd, then one port per ANC, in this order
 * synchronous: normal        # the services' SQLite commits: normal (WAL; survives a killed process)
 *                            # or full (also survives power loss; an fsync per commit)
 * logLevel: info             # the services' pino level (debug adds every machine event)
 * stepOrder: published       # the AR: M5 after step 4 (published) or with M1 (overlapped; see
 *                            # docs/protocol.md: a failed step 1 then still mints at KServ2)
 * ancs:
 *   - name: anc1
 *     firewall: A            # Fig. 10 configuration: A, B or C
 *     confirmOutbound: false # FW-8: hold everything the firewall sends out
 *     nodes: [ve1]           # node VEs (nodeos); the firewall VE is always there
 *   - name: anc2
 *     nodes:                 # a node with TB-8 profile settings of its own (docs/vmm.md)
 *       - name: ve1
 *         profile: { sdt_policy: P3, memory_bytes: 2097152 }
 * ```
 */
import { readFileSync } from 'node:fs';
import {
  ClefnetError,
  type Name,
  type ProfileName,
  parseName,
  STEP_ORDERS,
  type StepOrder,
} from '@clefnet/protocol';
import { parse } from 'yaml';

export interface NodeSpec {
  readonly name: string;
  /** TB-8 profile settings for this VE (the testbed writes the rest: ROM, NVRAM, key trap). */
  readonly profile: Readonly<Record<string, unknown>>;
}

export interface AncSpec {
  readonly name: string;
  readonly firewall: 'A' | 'B' | 'C';
  readonly confirmOutbound: boolean;
  readonly nodes: readonly NodeSpec[];
}

/** The profile keys a topology may set for a node VE; the ANC checks their values when it starts. */
export const NODE_PROFILE_KEYS = [
  'memory_bytes',
  'sdt_policy',
  'qpt',
  'vedt_mode',
  'vedt_write',
  'vedt_guard',
  'outward_guard',
  'interrupt_lookahead',
  'crypto_device',
] as const;

export interface Topology {
  readonly profile: ProfileName;
  readonly domain: string;
  readonly host: string;
  readonly basePort: number;
  readonly synchronous: 'full' | 'normal';
  readonly logLevel: LogLevel;
  readonly stepOrder: StepOrder;
  readonly ancs: readonly AncSpec[];
}

/** `npm start`'s topology: four services and two ANCs, each a firewall VE and one node VE. */
export const DEFAULT_TOPOLOGY: Topology = {
  profile: 'patent',
  domain: 'clefnet.test',
  host: '127.0.0.1',
  basePort: 7100,
  synchronous: 'normal',
  logLevel: 'info',
  stepOrder: 'published',
  ancs: [
    { name: 'anc1', firewall: 'A', confirmOutbound: false, nodes: [{ name: 've1', profile: {} }] },
    { name: 'anc2', firewall: 'A', confirmOutbound: false, nodes: [{ name: 've1', profile: {} }] },
  ],
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

/** Names of the services and of the data folder's own folders. */
const RESERVED = ['ks1', 'ks2', 'ar', 'asd', 'keys', 'logs'] as const;

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

function invalid(field: string, why: string): ClefnetError {
  return new ClefnetError('CONFIG_INVALID', `topology: ${field} ${why}`, { field });
}

function fields(o: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw invalid(field, 'must be a mapping');
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) throw invalid(`${field}.${k}`.replace(/^\./, ''), 'is not a field');
  return o as Record<string, unknown>;
}

function label(v: unknown, field: string): string {
  if (typeof v !== 'string' || !LABEL.test(v)) throw invalid(field, 'must be a DNS label (a-z, 0-9, -)');
  return v;
}

/** Checks a parsed topology document (defaults for what it leaves out). */
export function parseTopology(doc: unknown): Topology {
  const o = fields(doc ?? {}, '', [
    'profile',
    'domain',
    'host',
    'basePort',
    'synchronous',
    'logLevel',
    'stepOrder',
    'ancs',
  ]);
  const d = DEFAULT_TOPOLOGY;
  const profile = o.profile ?? d.profile;
  if (profile !== 'patent' && profile !== 'hardened') throw invalid('profile', 'must be patent or hardened');
  const domain = o.domain ?? d.domain;
  if (typeof domain !== 'string') throw invalid('domain', 'must be a string');
  try {
    parseName(`ks1.${domain}`);
  } catch {
    throw invalid('domain', 'must be a DNS name');
  }
  const host = o.host ?? d.host;
  if (typeof host !== 'string' || host.length === 0) throw invalid('host', 'must be a host name or address');
  const basePort = o.basePort ?? d.basePort;
  if (typeof basePort !== 'number' || !Number.isInteger(basePort) || basePort < 1024 || basePort > 65_000)
    throw invalid('basePort', 'must be an integer in 1024..65000');
  const synchronous = o.synchronous ?? d.synchronous;
  if (synchronous !== 'full' && synchronous !== 'normal')
    throw invalid('synchronous', 'must be full or normal');
  const logLevel = o.logLevel ?? d.logLevel;
  if (typeof logLevel !== 'string' || !(LOG_LEVELS as readonly string[]).includes(logLevel))
    throw invalid('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`);
  const stepOrder = o.stepOrder ?? d.stepOrder;
  if (!(STEP_ORDERS as readonly unknown[]).includes(stepOrder))
    throw invalid('stepOrder', `must be ${STEP_ORDERS.join(' or ')}`);
  const rawAncs = o.ancs ?? d.ancs;
  if (!Array.isArray(rawAncs) || rawAncs.length === 0) throw invalid('ancs', 'must list at least one ANC');
  if (rawAncs.length > 64) throw invalid('ancs', 'may list at most 64 ANCs');
  const ancs = rawAncs.map((a, i): AncSpec => {
    const f = `ancs[${i}]`;
    const x = fields(a, f, ['name', 'firewall', 'confirmOutbound', 'nodes']);
    const firewall = x.firewall ?? 'A';
    if (firewall !== 'A' && firewall !== 'B' && firewall !== 'C')
      throw invalid(`${f}.firewall`, 'must be A, B or C');
    const confirmOutbound = x.confirmOutbound ?? false;
    if (typeof confirmOutbound !== 'boolean') throw invalid(`${f}.confirmOutbound`, 'must be true or false');
    const nodes = x.nodes ?? ['ve1'];
    if (!Array.isArray(nodes) || nodes.length === 0 || nodes.length > 8)
      throw invalid(`${f}.nodes`, 'must list 1 to 8 node VEs');
    const specs = nodes.map((n, j): NodeSpec => {
      const g = `${f}.nodes[${j}]`;
      if (typeof n === 'string') return { name: label(n, g), profile: {} };
      const y = fields(n, g, ['name', 'profile']);
      const profile = fields(y.profile ?? {}, `${g}.profile`, NODE_PROFILE_KEYS);
      return { name: label(y.name, `${g}.name`), profile };
    });
    const names = specs.map((n) => n.name);
    if (new Set(names).size !== names.length || names.includes('fw'))
      throw invalid(`${f}.nodes`, 'must be unique and not "fw"');
    return { name: label(x.name, `${f}.name`), firewall, confirmOutbound, nodes: specs };
  });
  if (new Set(ancs.map((a) => a.name)).size !== ancs.length) throw invalid('ancs', 'names must be unique');
  for (const [i, a] of ancs.entries())
    if ((RESERVED as readonly string[]).includes(a.name))
      throw invalid(`ancs[${i}].name`, `is taken by the testbed (${RESERVED.join(', ')})`);
  return {
    profile,
    domain,
    host,
    basePort,
    synchronous,
    logLevel: logLevel as LogLevel,
    stepOrder: stepOrder as StepOrder,
    ancs,
  };
}

export function loadTopology(path: string): Topology {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ClefnetError('CONFIG_INVALID', `topology ${path}: ${(e as Error).message}`);
  }
  return parseTopology(doc);
}

/** The Names and ports a topology gives its parts. */
export interface Layout {
  readonly ks1: Name;
  readonly ks2: Name;
  readonly ar: Name;
  readonly asd: Name;
  readonly ports: { readonly ks1: number; readonly ks2: number; readonly ar: number; readonly asd: number };
  readonly ancs: readonly {
    readonly spec: AncSpec;
    readonly machine: Name;
    readonly port: number;
    readonly nodes: readonly {
      readonly ve: string;
      readonly name: Name;
      readonly profile: Readonly<Record<string, unknown>>;
    }[];
  }[];
}

export function layout(t: Topology): Layout {
  const n = (s: string) => parseName(`${s}.${t.domain}`);
  return {
    ks1: n('ks1'),
    ks2: n('ks2'),
    ar: n('ar'),
    asd: n('asd'),
    ports: { ks1: t.basePort, ks2: t.basePort + 1, ar: t.basePort + 2, asd: t.basePort + 3 },
    ancs: t.ancs.map((a, i) => ({
      spec: a,
      machine: n(a.name),
      port: t.basePort + 4 + i,
      nodes: a.nodes.map((ve) => ({ ve: ve.name, name: n(`${ve.name}.${a.name}`), profile: ve.profile })),
    })),
  };
}
