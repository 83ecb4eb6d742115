/**
 * Fixtures of the ANC service tests: fixed triples, KServ1 as a KeyServer party on its own real
 * WebSocket server, and the service with two small guests assembled here (the real guests, the
 * firewall OS and nodeos, are exercised by the system tests in test/anc.test.ts; a service may not
 * import them): a node guest that calls the key trap, prints the status digit and halts, and a
 * "firewall" that only halts.
 */
import { assemble, KEY_ADDRESS, type VeProfile } from '@clefnet/emulator';
import {
  type AuthorityTriple,
  createMemoryKeyServerStore,
  DEFAULT_NAMES,
  generateTriple,
  KeyServer,
  type KeyServerStore,
  type KnownKeyServer,
  type Name,
  nodeBackend,
  type ProfileName,
  seededRandom,
} from '@clefnet/protocol';
import type { ListenAddress } from '@clefnet/service-host';
import { type HostedParty, hostParty, silent } from '@clefnet/service-host/testing';
import {
  type AncService,
  type AncServiceOptions,
  createAncService,
  type ServiceEvent,
} from '../src/index.js';

export { httpJson, silent, until } from '@clefnet/service-host/testing';

export const TOKEN = 'anc-test-admin-token-0123456789';
export const AUTH = { authorization: `Bearer ${TOKEN}` };
export const N = DEFAULT_NAMES;

function fixedTriples(): Record<'ks1' | 'machine' | 'ar', AuthorityTriple> {
  const r = seededRandom('anc-service-tests/provision');
  const t = (name: Name) => generateTriple(nodeBackend, r, name);
  return { ks1: t(N.ks1), machine: t(N.machine), ar: t(N.ar) };
}
export const TRIPLES = fixedTriples();

export const known = (t: AuthorityTriple, scopes: KnownKeyServer['scopes']): KnownKeyServer => ({
  name: t.name,
  clef: t.clef,
  scopes,
});

/** A 64 KiB boot ROM: flat ring-0 segments, then `body`. */
export function rom(body: string): Uint8Array {
  const source = `
ROM_BASE equ 0xFFFF0000
start:  lgdt [cs:gdtr - ROM_BASE]
        jmpf 0x08:flat
flat:   mov eax, 0x10
        mov ds, eax
        mov es, eax
        mov ss, eax
        mov esp, 0x8000
${body}
        .align 8
gdt:    .dword 0, 0
        .dword 0, 0x9A8FFFFF
        .dword 0, 0x928FFFFF
gdt_end:
gdtr:   .word gdt_end - gdt - 1
        .dword gdt
        .org 0xFFFFFFF0
        jmp start - ROM_BASE
        .space 8, 0xFF
`;
  return assemble(source, { origin: 0xffff0000, file: 'test.s' }).bytes;
}

/** Calls the key trap once, prints its status digit, halts. */
export const KEY_CALLER = rom(`
        mov edi, 0x1000
        mov ecx, 256
        mov eax, ${KEY_ADDRESS}
        call eax
        add eax, '0'
        out 0x3F8, eax
        cli
        hlt`);
export const HALTER = rom(`
        cli
        hlt`);

export function profiles(node = KEY_CALLER): VeProfile[] {
  return [
    { name: 'fw', memoryBytes: 1 << 20, rom: HALTER },
    { name: 'node', memoryBytes: 1 << 20, rom: node, keyTrap: { name: N.ve } },
  ];
}

export interface Running {
  readonly service: AncService;
  readonly address: ListenAddress;
  readonly events: ServiceEvent[];
  readonly ks1: HostedParty<KeyServer>;
  readonly ks1Store: KeyServerStore;
  stop(): Promise<void>;
}

/** KServ1 on a socket (machine registered, `owner-only` minting) and the ANC service. */
export async function startAnc(
  profile: ProfileName = 'patent',
  opts: Partial<AncServiceOptions> = {},
): Promise<Running> {
  const clock = Date.now;
  const ks1Store = createMemoryKeyServerStore();
  const ks1 = new KeyServer({
    triple: TRIPLES.ks1,
    backend: nodeBackend,
    random: seededRandom('anc-service-tests/ks1'),
    clock,
    profile,
    store: ks1Store,
    serves: ['clef', 'mint'],
    nameOwnership: { policy: 'owner-only' },
  });
  for (const t of [TRIPLES.machine, TRIPLES.ar]) ks1.register(t);
  const h1 = await hostParty(ks1, clock);
  const service = createAncService({
    identity: TRIPLES.machine,
    keyServers: [known(TRIPLES.ks1, ['clef', 'mint'])],
    ves: profiles().map((p) => ({ profile: p, role: p.name === 'fw' ? 'firewall' : 'node' })),
    firewall: { config: 'A' },
    directory: { [N.ks1]: h1.address.ws },
    adminToken: TOKEN,
    logger: silent,
    profile,
    random: seededRandom('anc-service-tests/anc'),
    heartbeatMs: 0,
    closeGraceMs: 200,
    ...opts,
  });
  const events: ServiceEvent[] = [];
  service.subscribe((e) => events.push(e));
  const address = await service.start();
  return {
    service,
    address,
    events,
    ks1: h1,
    ks1Store,
    stop: async () => {
      await service.stop();
      await h1.host.stop();
    },
  };
}
