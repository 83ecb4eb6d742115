/**
 * The reference run of issue 2 point 6: steps 1-9, the triple hand-over and an ASD channel between
 * in-memory parties, under both profiles and both crypto backends, asserting every party's stored
 * state and the program bytes the ANC recovers.
 */
import {
  type AuthorityTriple,
  type CryptoBackend,
  clefEquals,
  clefId,
  craftFrame,
  createWorld,
  DEFAULT_NAMES,
  type KnownKeyServer,
  nobleBackend,
  nodeBackend,
  openFrame,
  type ProfileName,
  parseName,
  Repository,
  readPayload,
  seededRandom,
  toHex,
  utf8,
  type World,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';

const PROGRAM = utf8('billing counter v1: count packets and bytes, report to ASD');
const REPORT = utf8('packets=3 bytes=120');

function runReference(profile: ProfileName, backend: CryptoBackend): { world: World; id: string } {
  const world = createWorld({ profile, backend, seed: 'reference' });
  world.issueVeKey();
  const id = world.deploy(PROGRAM);
  world.channel(REPORT);
  return { world, id };
}

/** The published order (the default in both profiles): M5 only after step 4. */
const EXPECTED_WIRE = [
  'anc1.clefnet.test -> ks1.clefnet.test VEKEY-REQ',
  'ks1.clefnet.test -> anc1.clefnet.test TRIPLE-ANS',
  'ar.clefnet.test -> ks1.clefnet.test M1',
  'ks1.clefnet.test -> ar.clefnet.test CLEF-ANS',
  'ar.clefnet.test -> ks2.clefnet.test M5',
  'ks2.clefnet.test -> ks1.clefnet.test RESOLVE-REQ',
  'ks1.clefnet.test -> ks2.clefnet.test CLEF-ANS',
  'ks2.clefnet.test -> ar.clefnet.test TRIPLE-ANS',
  'ar.clefnet.test -> ve1.anc1.clefnet.test M7',
  'ar.clefnet.test -> ve1.anc1.clefnet.test HANDOVER',
  've1.anc1.clefnet.test -> ks1.clefnet.test M9a',
  'ks1.clefnet.test -> ve1.anc1.clefnet.test CLEF-ANS',
  've1.anc1.clefnet.test -> ks1.clefnet.test RESOLVE-REQ',
  'ks1.clefnet.test -> ve1.anc1.clefnet.test CLEF-ANS',
  'billing.ar.clefnet.test -> ks2.clefnet.test OPEN',
  'ks2.clefnet.test -> asd.clefnet.test FROM-ASD',
  'asd.clefnet.test -> ks2.clefnet.test REPLY',
  'ks2.clefnet.test -> billing.ar.clefnet.test FROM-SECAPP',
];

/** stepOrder `overlapped`: M1 and M5 leave together; M7 waits for both answers. */
const OVERLAPPED_WIRE = [
  ...EXPECTED_WIRE.slice(0, 3),
  'ar.clefnet.test -> ks2.clefnet.test M5',
  'ks1.clefnet.test -> ar.clefnet.test CLEF-ANS',
  ...EXPECTED_WIRE.slice(5),
];

/** The wire without each RESOLVE-REQ and KServ1's answer to it (what direct provisioning saves). */
function withoutResolutions(wire: readonly string[]): string[] {
  const out: string[] = [];
  const waiting = new Set<string>();
  for (const f of wire) {
    const [from, , to, step] = f.split(' ');
    if (step === 'RESOLVE-REQ') waiting.add(from!);
    else if (step === 'CLEF-ANS' && waiting.has(to!)) waiting.delete(to!);
    else out.push(f);
  }
  return out;
}

describe.each([
  ['node', nodeBackend],
  ['noble', nobleBackend],
] as const)('reference run, %s backend', (_label, backend) => {
  describe.each(['patent', 'hardened'] as const)('%s profile', (profile) => {
    const { world, id } = runReference(profile, backend);
    const n = world.names;

    it('carries out every step in order, with no error', () => {
      expect(world.net.errors.map((e) => `${e.party}: ${e.error.code} ${e.error.message}`)).toEqual([]);
      expect(world.net.wire.map((f) => `${f.from} -> ${f.to} ${f.step}`)).toEqual(EXPECTED_WIRE);
    });

    it('KServ1 holds the provisioned pairs and the issued VE pair, owned by the machine (KEY-12, TB-11)', () => {
      const rows = world.ks1.store.list();
      expect(rows.map((b) => [b.name, b.owner, b.revokedAt])).toEqual([
        [n.machine, null, null],
        [n.ar, null, null],
        [n.ks2, null, null],
        [n.ve, n.machine, null],
      ]);
      expect(clefEquals(rows[3]!.clef, world.veTriple!.clef)).toBe(true);
      expect(clefEquals(rows[1]!.clef, world.triples.ar.clef)).toBe(true);
    });

    it('KServ2 stored the Name and Clef of the triple it minted, owned by the AR (PROTO-19)', () => {
      const rows = world.ks2.store.list();
      expect(rows.map((b) => [b.name, b.owner, b.revokedAt])).toEqual([
        [n.asd, null, null],
        [n.secApp, n.ar, null],
      ]);
      expect(clefEquals(rows[1]!.clef, world.secApp!.clefOfSelf())).toBe(true);
    });

    it('the AR took the VE Clef in step 4 and finished the deployment', () => {
      expect(world.ar.deployment(id)).toEqual({
        id,
        anc: n.ve,
        secApp: n.secApp,
        state: 'sent',
        ancClef: clefId(world.veTriple!.clef),
        code: undefined,
      });
    });

    it('the ANC recovered exactly the program bytes, signed by the AR (step 9)', () => {
      expect(world.programs).toHaveLength(1);
      expect(world.programs[0]!.sender).toBe(n.ar);
      expect(toHex(world.programs[0]!.program)).toBe(toHex(PROGRAM));
      expect(world.ve!.installed).toEqual([
        {
          sender: n.ar,
          digest: toHex(backend.sha256(PROGRAM)),
          bytes: PROGRAM.length,
          at: Date.UTC(2026, 0, 1),
        },
      ]);
    });

    it('the application got its triple and reached the ASD through KServ2 (PROTO-23, PROTO-25)', () => {
      expect(world.secApp!.name).toBe(n.secApp);
      expect(world.asdRecords.map((r) => [r.app, toHex(r.data)])).toEqual([[n.secApp, toHex(REPORT)]]);
      expect(world.channelAnswers.map((a) => [a.peer, Buffer.from(a.data).toString()])).toEqual([
        [n.asd, 'ok 1'],
      ]);
    });

    it('leaves no request outstanding and no message parked', () => {
      for (const p of [world.ks1, world.ks2, world.ar, world.machine, world.ve!, world.secApp!, world.asd]) {
        expect([p.name, p.pendingCount, p.parkedMessages]).toEqual([p.name, 0, 0]);
      }
    });
  });
});

describe('direct provisioning (KEY-12)', () => {
  it.each(['patent', 'hardened'] as const)(
    '%s: KServ2 knows the AR and the VE knows KServ2, so neither resolves; the application still reaches the ASD',
    (profile) => {
      const world = createWorld({ profile, backend: nodeBackend, seed: 'reference', provisioning: 'direct' });
      world.issueVeKey();
      world.deploy(PROGRAM);
      world.channel(REPORT);
      expect(world.net.errors).toEqual([]);
      expect(world.net.wire.map((f) => `${f.from} -> ${f.to} ${f.step}`)).toEqual(
        withoutResolutions(EXPECTED_WIRE),
      );
      expect(world.programs.map((p) => toHex(p.program))).toEqual([toHex(PROGRAM)]);
      expect(world.asdRecords.map((r) => toHex(r.data))).toEqual([toHex(REPORT)]);
    },
  );
});

describe('determinism', () => {
  it('the same seed gives the same bytes on the wire, whichever backend', () => {
    const a = runReference('hardened', nodeBackend).world.net.wire.map((f) => toHex(f.bytes));
    const b = runReference('hardened', nobleBackend).world.net.wire.map((f) => toHex(f.bytes));
    expect(a).toEqual(b);
  });

  it('a different seed gives different bytes', () => {
    const a = runReference('patent', nodeBackend).world.net.wire[0]!.bytes;
    const w = createWorld({ profile: 'patent', backend: nodeBackend, seed: 'other' });
    w.issueVeKey();
    expect(toHex(w.net.wire[0]!.bytes)).not.toBe(toHex(a));
  });
});

describe('TB-11: the alternative reading, Name-ANC = the machine', () => {
  it.each(['patent', 'hardened'] as const)(
    '%s: the program is sealed to the machine Clef, no VE key is issued',
    (profile) => {
      const world = createWorld({ profile, backend: nodeBackend, seed: 'tb11', veIdentity: 'machine' });
      world.issueVeKey();
      world.deploy(PROGRAM);
      expect(world.net.errors.map((e) => e.error.code)).toEqual([]);
      expect(world.net.wire.filter((f) => f.step === 'VEKEY-REQ')).toEqual([]);
      expect(world.ve!.name).toBe(world.names.machine);
      expect(toHex(world.programs[0]!.program)).toBe(toHex(PROGRAM));
      expect(world.ks1.store.list().map((b) => b.name)).toEqual([
        world.names.machine,
        world.names.ar,
        world.names.ks2,
      ]);
    },
  );
});

describe('a malformed triple from KServ2 (PROTO-13: only well-formed payloads are accepted)', () => {
  it.each(['patent', 'hardened'] as const)(
    '%s: the AR refuses it with KEY_INVALID and the deployment fails',
    (profile) => {
      const world = createWorld({ profile, backend: nodeBackend, seed: 'bad-triple' });
      world.issueVeKey();
      world.net.tap = (f) => {
        if (f.step !== 'TRIPLE-ANS' || f.to !== world.names.ar) return 'pass';
        // An insider at KServ2 signs a triple whose Clef does not belong to its Key.
        const opened = openFrame(world.backend, world.triples.ar.key, f.bytes);
        const answer = readPayload(world.profile, opened.envelope, ['triple']);
        const bad = { ...answer.body.triple, clef: world.triples.asd.clef };
        return craftFrame(
          world.backend,
          seededRandom('insider'),
          world.profile,
          world.triples.ks2,
          { name: world.names.ar, clef: world.triples.ar.clef },
          { type: 'triple', triple: bad },
          answer.header,
          opened.frame.corr,
        );
      };
      const id = world.deploy(PROGRAM);
      expect(world.net.errors.map((e) => `${e.party} ${e.error.code}`)).toEqual([
        `${world.names.ar} KEY_INVALID`,
      ]);
      expect(world.ar.deployment(id)).toMatchObject({ state: 'failed', code: 'KEY_INVALID' });
      expect(world.programs).toEqual([]);
    },
  );
});

describe('the AR step order (RepositoryOptions.stepOrder)', () => {
  const wire = (w: World) => w.net.wire.map((f) => `${f.from} -> ${f.to} ${f.step}`);
  const arEvents = (w: World, id: string) =>
    w.net.events
      .filter((e) => e.party === w.names.ar && (e.deployment === id || e.type === 'sent'))
      .map((e) => `${e.type} ${e.step ?? e.state ?? ''}`.trim());
  /** An overlapped world with its VE key, whose first answer from `server` to the AR is held back. */
  const holding = (seed: string, server: 'ks1' | 'ks2') => {
    const world = createWorld({
      profile: 'hardened',
      backend: nodeBackend,
      seed,
      provisioning: 'direct',
      stepOrder: 'overlapped',
    });
    world.issueVeKey();
    let held: Uint8Array | undefined;
    world.net.tap = (f) => {
      if (f.from !== world.names[server] || f.to !== world.names.ar || held !== undefined) return 'pass';
      held = f.bytes;
      return 'drop';
    };
    /** Delivers the held answer now, and every frame from then on. */
    const release = () => {
      expect(held, `an answer from ${server} held back`).toBeDefined();
      world.net.tap = () => 'pass';
      world.net.inject(world.names[server], world.names.ar, held!);
      world.net.run();
    };
    return { world, release };
  };

  it('`overlapped` sends M5 right after M1 in either profile; the rest of the exchange is unchanged', () => {
    for (const profile of ['patent', 'hardened'] as const) {
      const world = createWorld({
        profile,
        backend: nodeBackend,
        seed: 'reference',
        stepOrder: 'overlapped',
      });
      world.issueVeKey();
      world.deploy(PROGRAM);
      world.channel(REPORT);
      expect(world.net.errors).toEqual([]);
      expect(wire(world)).toEqual(OVERLAPPED_WIRE);
      expect(world.asdRecords.map((r) => toHex(r.data))).toEqual([toHex(REPORT)]);
    }
  });

  it('M6 before M3: the triple waits for the Clef, then M7 and the hand-over leave', () => {
    // Hold KServ1's answer back until KServ2's is in.
    const { world, release } = holding('order', 'ks1');
    const id = world.deploy(PROGRAM);
    expect(world.ar.deployment(id)).toMatchObject({ state: 'resolving' });
    expect(arEvents(world, id)).toEqual(['deployment resolving', 'sent M1', 'sent M5', 'triple-accepted']);
    release();
    expect(world.net.errors).toEqual([]);
    expect(world.ar.deployment(id)).toMatchObject({ state: 'sent' });
    expect(wire(world).slice(-5)).toEqual([
      'ks1.clefnet.test -> ar.clefnet.test INJECTED',
      'ar.clefnet.test -> ve1.anc1.clefnet.test M7',
      'ar.clefnet.test -> ve1.anc1.clefnet.test HANDOVER',
      've1.anc1.clefnet.test -> ks1.clefnet.test M9a',
      'ks1.clefnet.test -> ve1.anc1.clefnet.test CLEF-ANS',
    ]);
    expect(world.programs.map((p) => toHex(p.program))).toEqual([toHex(PROGRAM)]);
    expect(world.secApp?.name).toBe(world.names.secApp);
  });

  it('M3 before M6: the deployment is `minting` until the triple is in', () => {
    const { world, release } = holding('order2', 'ks2');
    const id = world.deploy(PROGRAM);
    expect(world.ar.deployment(id)).toMatchObject({ state: 'minting' });
    expect(world.programs).toEqual([]);
    release();
    expect(world.ar.deployment(id)).toMatchObject({ state: 'sent' });
    expect(world.programs.map((p) => toHex(p.program))).toEqual([toHex(PROGRAM)]);
  });

  it('a failed Clef query fails the deployment; the triple answering later is dropped, never handed over', () => {
    const { world, release } = holding('order3', 'ks2');
    // KServ1 does not know this Name: a signed error answers M1.
    const outcome = world.ar.deploy({
      anc: parseName('nobody.anc1.clefnet.test'),
      program: PROGRAM,
      secApp: world.names.secApp,
      id: 'lost',
    });
    world.net.post(world.names.ar, outcome);
    world.net.run();
    expect(world.ar.deployment('lost')).toMatchObject({ state: 'failed', code: 'REMOTE_ERROR' });
    release();
    // KServ1's refusal is its own error; the AR takes the late triple without one.
    expect(world.net.errors.map((e) => `${e.party} ${e.error.code}`)).toEqual([
      `${world.names.ks1} UNKNOWN_NAME`,
    ]);
    expect(world.ar.deployment('lost')).toMatchObject({ state: 'failed', code: 'REMOTE_ERROR' });
    expect(world.net.wire.filter((f) => f.step === 'M7' || f.step === 'HANDOVER')).toEqual([]);
    expect(world.ar.pendingCount).toBe(0);
    // The price of overlapping (documented): KServ2 minted before step 4 failed, so the SecApp
    // Name is bound there though no application holds its Key.
    expect(world.ks2.store.get(world.names.secApp)).toMatchObject({ name: world.names.secApp });
  });

  it('a deployment that cannot go on is refused before anything is sent or remembered', () => {
    const triples = createWorld({ profile: 'hardened', backend: nodeBackend, seed: 'refuse' }).triples;
    const pair = (t: AuthorityTriple, scopes: KnownKeyServer['scopes']) => ({
      name: t.name,
      clef: t.clef,
      scopes,
    });
    for (const [what, opts] of [
      ['no key server mints', { keyServers: [pair(triples.ks1, ['clef'])] }],
      [
        'no room for M1 and M5',
        { keyServers: [pair(triples.ks1, ['clef']), pair(triples.ks2, ['mint'])], maxPending: 1 },
      ],
    ] as const) {
      const ar = new Repository({
        triple: triples.ar,
        backend: nodeBackend,
        random: seededRandom(what),
        clock: () => 0,
        profile: 'hardened',
        stepOrder: 'overlapped',
        ...opts,
      });
      const o = ar.deploy({ anc: DEFAULT_NAMES.ve, program: PROGRAM, secApp: DEFAULT_NAMES.secApp, id: 'x' });
      expect([what, o.error?.code]).toEqual([
        what,
        what === 'no key server mints' ? 'CONFIG_INVALID' : 'LIMIT_EXCEEDED',
      ]);
      expect(o.send).toEqual([]);
      expect(ar.deployment('x')).toBeUndefined();
      expect(ar.pendingCount).toBe(0);
    }
  });

  it('requests that time out in one sweep are each reported with their own deployment', () => {
    const world = createWorld({
      profile: 'hardened',
      backend: nodeBackend,
      seed: 'sweep',
      provisioning: 'direct',
      stepOrder: 'overlapped',
    });
    world.issueVeKey();
    world.net.tap = (f) => (f.to === world.names.ar ? 'drop' : 'pass'); // no answer reaches the AR
    const a = world.deploy(PROGRAM, true, 'a');
    const b = world.deploy(PROGRAM, true, 'b');
    world.advance(60_000);
    const o = world.ar.expire();
    expect(
      o.deliver.map((d) =>
        d.kind === 'request-failed' ? `${d.deployment} ${d.step} ${d.code}` : `${d.kind}`,
      ),
    ).toEqual([
      `${a} M1 TIMEOUT`,
      'deployment',
      `${a} M5 TIMEOUT`,
      `${b} M1 TIMEOUT`,
      'deployment',
      `${b} M5 TIMEOUT`,
    ]);
    expect(o.events.filter((e) => e.type === 'request-failed').map((e) => e.deployment)).toEqual([
      a,
      a,
      b,
      b,
    ]);
    expect([world.ar.deployment(a)?.state, world.ar.deployment(b)?.state]).toEqual(['failed', 'failed']);
  });

  it('refuses an unknown step order', () => {
    expect(() =>
      createWorld({ profile: 'hardened', backend: nodeBackend, stepOrder: 'sideways' as never }),
    ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
