/**
 * One rule, one attack: each attack of SPEC §17.2 that a rule of §17.3 names succeeds under
 * `patent`, fails under `patent` plus that single rule with the rule's error code, and fails under
 * `hardened`. This is what "the difference sits in one place per rule" buys a researcher.
 */
import {
  type AuthorityTriple,
  craftFrame,
  createKeyServer,
  createMemoryKeyServerStore,
  createProfile,
  createWorld,
  encodeFields,
  encodeFrame,
  generateTriple,
  honestHeader,
  nodeBackend,
  openFrame,
  type Profile,
  parseName,
  type RuleOverrides,
  readPayload,
  resealFrame,
  seededRandom,
  utf8,
  type World,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';

const E_NAME = parseName('eve.clefnet.test');

function setup(profile: Profile | 'patent' | 'hardened'): { w: World; eve: AuthorityTriple } {
  const w = createWorld({ profile, backend: nodeBackend, seed: 'rules', senderModel: 'open' });
  const eve = generateTriple(nodeBackend, seededRandom('eve-provision'), E_NAME);
  w.net.post(w.ks1.name, w.ks1.register(eve)); // E holds an ordinary registered triple
  w.issueVeKey();
  return { w, eve };
}

const only = (rules: RuleOverrides): Profile => createProfile({ base: 'patent', rules });

function newErrors(w: World, from: number): string[] {
  return w.net.errors.slice(from).map((e) => `${e.party} ${e.error.code}`);
}

describe('ATK-4: any known key server may answer for any Name (rule serverScope)', () => {
  function attack(profile: Profile | 'patent' | 'hardened') {
    const { w, eve } = setup(profile);
    const eRandom = seededRandom('eve-4');
    let stolen = '';
    w.net.tap = (f) => {
      if (f.step === 'M1') {
        // E (controlling KServ2) drops M1 and answers Clef(Name-ANC) = Clef-E itself.
        const asked = openFrame(w.backend, w.triples.ks1.key, f.bytes); // only to copy the request nonce
        const nonce = readNonce(w, asked.envelope.signed.payload);
        w.net.inject(
          w.names.ks2,
          w.names.ar,
          craftFrame(
            w.backend,
            eRandom,
            w.profile,
            w.triples.ks2,
            { name: w.names.ar, clef: w.triples.ar.clef },
            { type: 'clef-answer', subject: w.names.ve, clef: eve.clef },
            honestHeader(
              w.profile,
              eRandom,
              w.clock(),
              w.triples.ks2,
              { name: w.names.ar, clef: w.triples.ar.clef },
              nonce,
            ),
            '',
          ),
        );
        return 'drop';
      }
      if (f.step === 'M7' && stolen === '') {
        const opened = openFrame(w.backend, eve.key, f.bytes);
        stolen = 'read';
        return resealFrame(w.backend, eRandom, opened, { name: w.names.ve, clef: w.veTriple!.clef });
      }
      return 'pass';
    };
    const before = w.net.errors.length;
    w.deploy(utf8('module'), false, 'd');
    return { w, stolen, errors: newErrors(w, before) };
  }

  it('patent: the AR takes Clef-E from KServ2, E reads and forwards the program', () => {
    const { w, stolen, errors } = attack('patent');
    expect(errors).toEqual([]);
    expect(stolen).toBe('read');
    expect(w.programs).toHaveLength(1);
  });

  it('patent + serverScope: WRONG_SERVER', () => {
    const { w, stolen, errors } = attack(only({ serverScope: true }));
    expect(errors).toEqual([`${w.names.ar} WRONG_SERVER`]);
    expect(stolen).toBe('');
  });

  it('hardened: WRONG_SERVER', () => {
    const { w, errors } = attack('hardened');
    expect(errors).toEqual([`${w.names.ar} WRONG_SERVER`]);
  });
});

/** The request nonce, when the profile writes one (so E's forged answer is otherwise perfect). */
function readNonce(w: World, payload: Uint8Array): Uint8Array | undefined {
  if (!w.profile.rules.freshness) return undefined;
  const skip = w.profile.rules.namesInSignature ? 3 : 1;
  let at = 0;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  for (let i = 0; i < skip; i++) at += 4 + view.getUint32(at);
  return payload.slice(at + 4, at + 4 + view.getUint32(at));
}

describe('ATK-5: surreptitious forwarding of a signed program (rule namesInSignature)', () => {
  function attack(profile: Profile | 'patent' | 'hardened') {
    const { w, eve } = setup(profile);
    // E is a registered ANC ("I") that the AR legitimately programs.
    w.ks1.register(eve);
    const before = w.net.errors.length;
    const out = w.ar.deploy({ anc: E_NAME, program: utf8('program meant for I'), id: 'to-i' });
    w.net.post(w.ar.name, out);
    const eRandom = seededRandom('eve-5');
    w.net.tap = (f) => {
      if (f.step === 'M7' && f.to === E_NAME) {
        const opened = openFrame(w.backend, eve.key, f.bytes);
        w.net.inject(
          w.names.ar,
          w.names.ve,
          resealFrame(w.backend, eRandom, opened, { name: w.names.ve, clef: w.veTriple!.clef }),
        );
        return 'drop';
      }
      return 'pass';
    };
    w.net.run();
    return { w, errors: newErrors(w, before) };
  }

  it('patent: B installs the program the AR sent to I', () => {
    const { w, errors } = attack('patent');
    expect(errors).toEqual([]);
    expect(w.programs.map((p) => Buffer.from(p.program).toString())).toEqual(['program meant for I']);
  });

  it('patent + namesInSignature: WRONG_RECEIVER', () => {
    const { w, errors } = attack(only({ namesInSignature: true }));
    expect(errors).toEqual([`${w.names.ve} WRONG_RECEIVER`]);
    expect(w.programs).toEqual([]);
  });

  it('hardened: WRONG_RECEIVER', () => {
    const { w, errors } = attack('hardened');
    expect(errors).toEqual([`${w.names.ve} WRONG_RECEIVER`]);
  });
});

describe('ATK-6 (KServ2 part) and ATK-13: replayed or hostile New(N) at KServ2 (rules freshness, nameOwnership)', () => {
  function replayM5(profile: Profile | 'patent' | 'hardened') {
    const { w } = setup(profile);
    w.deploy(utf8('module'), true, 'first');
    const m5 = w.net.wire.find((f) => f.step === 'M5')!.bytes;
    const minted = w.ks2.store.get(w.names.secApp)!.clef;
    const before = w.net.errors.length;
    w.advance(1_000);
    w.net.inject(w.names.ar, w.names.ks2, m5);
    w.net.run();
    return { w, minted, errors: newErrors(w, before) };
  }

  it('patent: each replay of M5 mints a new triple and replaces the deployed SecApp Clef', () => {
    const { w, minted, errors } = replayM5('patent');
    // KServ2 serves the replay; its answer reaches an AR that asked nothing.
    expect(errors).toEqual([`${w.names.ar} UNSOLICITED_ANSWER`]);
    expect(Buffer.from(w.ks2.store.get(w.names.secApp)!.clef.sign).equals(Buffer.from(minted.sign))).toBe(
      false,
    );
    // The deployed application can no longer authenticate to the ASD through KServ2.
    const before = w.net.errors.length;
    w.channel(utf8('report'));
    expect(newErrors(w, before)).toEqual([`${w.names.ks2} CRYPTO_SIGNATURE`]);
  });

  it('patent + freshness: REPLAY at KServ2, binding unchanged', () => {
    const { w, minted, errors } = replayM5(only({ freshness: true }));
    // Refused before any signature work and not answered: the replay costs nothing downstream.
    expect(errors).toEqual([`${w.names.ks2} REPLAY`]);
    expect(Buffer.from(w.ks2.store.get(w.names.secApp)!.clef.sign).equals(Buffer.from(minted.sign))).toBe(
      true,
    );
  });

  function squat(profile: Profile | 'patent' | 'hardened') {
    const { w, eve } = setup(profile);
    w.deploy(utf8('module'), true, 'first');
    const eRandom = seededRandom('eve-13');
    const ks2 = { name: w.names.ks2, clef: w.triples.ks2.clef };
    const before = w.net.errors.length;
    w.net.inject(
      E_NAME,
      w.names.ks2,
      craftFrame(
        w.backend,
        eRandom,
        w.profile,
        eve,
        ks2,
        { type: 'new-query', subject: w.names.secApp },
        honestHeader(w.profile, eRandom, w.clock(), eve, ks2),
      ),
    );
    w.net.run();
    return { w, errors: newErrors(w, before) };
  }

  it('patent: any registered principal re-mints the SecApp Name and takes it over', () => {
    const { w, errors } = squat('patent');
    expect(errors).toEqual([]);
    expect(w.ks2.store.get(w.names.secApp)!.owner).toBe(E_NAME);
  });

  it('patent + nameOwnership reject-if-exists: NAME_TAKEN', () => {
    const { w, errors } = squat(only({ nameOwnership: { policy: 'reject-if-exists' } }));
    expect(errors).toEqual([`${w.names.ks2} NAME_TAKEN`]);
    expect(w.ks2.store.get(w.names.secApp)!.owner).toBe(w.names.ar);
  });

  it('patent + nameOwnership subtreeOnly: NOT_AUTHORISED (E may only create Names below its own)', () => {
    const { w, errors } = squat(only({ nameOwnership: { subtreeOnly: true } }));
    expect(errors).toEqual([`${w.names.ks2} NOT_AUTHORISED`]);
  });
});

describe('ATK-15c: forged negative answers (rule signedErrors)', () => {
  function attack(profile: Profile | 'patent' | 'hardened') {
    const { w } = setup(profile);
    w.net.tap = (f) => {
      if (f.step === 'M1') {
        const forged = encodeFields([
          utf8('ERR'),
          utf8('UNKNOWN_NAME'),
          utf8('unknown Name'),
          utf8(w.names.ve),
        ]);
        w.net.inject(
          w.names.ks1,
          w.names.ar,
          encodeFrame({ kind: 'ERROR', to: w.names.ar, from: w.names.ks1, corr: '', body: forged }),
        );
        return 'drop';
      }
      return 'pass';
    };
    w.deploy(utf8('module'), false, 'd');
    return w;
  }

  it('patent: the AR believes the unsigned error and gives up on a valid ANC', () => {
    const w = attack('patent');
    expect(w.ar.deployment('d')).toMatchObject({ state: 'failed', code: 'REMOTE_ERROR' });
  });

  it('patent + signedErrors: the unsigned error is refused (FRAME_KIND), the deployment still waits', () => {
    const w = attack(only({ signedErrors: true }));
    expect(w.net.errors.map((e) => `${e.party} ${e.error.code}`)).toEqual([`${w.names.ar} FRAME_KIND`]);
    expect(w.ar.deployment('d')?.state).toBe('resolving');
  });
});

describe('cross-role delivery of a signed query as a program (rule typeTags)', () => {
  function attack(profile: Profile | 'patent' | 'hardened') {
    const { w } = setup(profile);
    const eRandom = seededRandom('eve-tags');
    w.net.tap = (f) => {
      if (f.step === 'M1') {
        // A malicious KServ1 insider re-seals the AR's signed query to the VE.
        const opened = openFrame(w.backend, w.triples.ks1.key, f.bytes);
        w.net.inject(
          w.names.ar,
          w.names.ve,
          resealFrame(w.backend, eRandom, opened, { name: w.names.ve, clef: w.veTriple!.clef }),
        );
      }
      return 'pass';
    };
    const before = w.net.errors.length;
    w.deploy(utf8('module'), false, 'd');
    return { w, errors: newErrors(w, before) };
  }

  it('patent: the VE installs the query payload, "signed by the AR", as a program', () => {
    const { w, errors } = attack('patent');
    expect(errors).toEqual([]);
    expect(w.programs.map((p) => Buffer.from(p.program).toString())).toEqual([w.names.ve, 'module']);
  });

  it('patent + typeTags: TYPE_MISMATCH', () => {
    const { w, errors } = attack(only({ typeTags: true }));
    expect(errors).toEqual([`${w.names.ve} TYPE_MISMATCH`]);
    expect(w.programs.map((p) => Buffer.from(p.program).toString())).toEqual(['module']);
  });
});

describe('ATK-14: open-model code push by any registered principal (closed sender list)', () => {
  function attack(senderModel: 'open' | 'closed') {
    const w = createWorld({ profile: 'patent', backend: nodeBackend, seed: 'atk14', senderModel });
    const eve = generateTriple(nodeBackend, seededRandom('eve-provision'), E_NAME);
    w.net.post(w.ks1.name, w.ks1.register(eve));
    w.issueVeKey();
    const eRandom = seededRandom('eve-14');
    const ve = { name: w.names.ve, clef: w.veTriple!.clef };
    w.net.inject(
      E_NAME,
      w.names.ve,
      craftFrame(w.backend, eRandom, w.profile, eve, ve, { type: 'program', program: utf8('P_evil') }),
    );
    w.net.run();
    return w;
  }

  it('open model: the VE installs P_evil from E', () => {
    const w = attack('open');
    expect(w.programs.map((p) => [p.sender, Buffer.from(p.program).toString()])).toEqual([
      [E_NAME, 'P_evil'],
    ]);
  });

  it('closed model: SENDER_NOT_LISTED before any key-server query', () => {
    const w = attack('closed');
    expect(w.net.errors.map((e) => `${e.party} ${e.error.code}`)).toEqual([
      `${w.names.ve} SENDER_NOT_LISTED`,
    ]);
    expect(w.net.wire.filter((f) => f.step === 'M9a')).toEqual([]);
  });
});

describe('revocation outlived through Names minted below the application (rule nameOwnership; PROTO-26)', () => {
  function attack(profile: Profile | 'patent' | 'hardened') {
    const { w } = setup(profile);
    w.deploy(utf8('billing module'), true, 'd');
    const app = w.secAppTriple!;
    const child = parseName(`shadow.${w.names.secApp}`);
    const eRandom = seededRandom('eve-child');
    const ks2 = { name: w.names.ks2, clef: w.triples.ks2.clef };
    const before = w.net.errors.length;
    const from = w.net.wire.length;
    w.net.inject(
      app.name,
      w.names.ks2,
      craftFrame(
        w.backend,
        eRandom,
        w.profile,
        app,
        ks2,
        { type: 'new-query', subject: child },
        honestHeader(w.profile, eRandom, w.clock(), app, ks2),
      ),
    );
    w.net.run();
    return { w, app, child, ks2, eRandom, from, errors: newErrors(w, before) };
  }

  it('patent: the application mints a Name below itself; revoking the application still stops that Name', () => {
    const { w, app, child, ks2, eRandom, from, errors } = attack('patent');
    // The minted triple reaches the application outside any request of its own party object.
    expect(errors).toEqual([`${w.names.secApp} UNSOLICITED_ANSWER`]);
    expect(w.ks2.store.get(child)?.owner).toBe(w.names.secApp);
    const answer = w.net.wire.slice(from).find((f) => f.to === app.name)!;
    const opened = openFrame(w.backend, app.key, answer.bytes);
    const childTriple = readPayload(w.profile, opened.envelope, ['triple']).body.triple;
    w.net.post(w.ks2.name, w.ks2.revoke(w.names.secApp));
    const before = w.net.errors.length;
    w.net.inject(
      child,
      w.names.ks2,
      craftFrame(w.backend, eRandom, w.profile, childTriple, ks2, {
        type: 'channel-open',
        peer: w.names.asd,
        data: utf8('billing data after revocation'),
      }),
    );
    w.net.run();
    expect(newErrors(w, before)).toEqual([`${w.names.ks2} REVOKED`]);
    expect(w.asdRecords.map((r) => r.app)).toEqual([]);
  });

  it('hardened: a minted Name may not mint (NOT_AUTHORISED)', () => {
    const { w, child, errors } = attack('hardened');
    expect(errors).toEqual([`${w.names.ks2} NOT_AUTHORISED`, `${w.names.secApp} UNSOLICITED_ANSWER`]);
    expect(w.ks2.store.get(child)).toBeUndefined();
  });
});

describe('KServ1 minting (VE keys) never overwrites a Name it does not own, in either profile', () => {
  it.each(['patent', 'hardened'] as const)('%s: E asking New(Name-AR) is refused', (profile) => {
    const { w, eve } = setup(profile);
    const eRandom = seededRandom('eve-ks1');
    const ks1 = { name: w.names.ks1, clef: w.triples.ks1.clef };
    const before = w.net.errors.length;
    w.net.inject(
      E_NAME,
      w.names.ks1,
      craftFrame(
        w.backend,
        eRandom,
        w.profile,
        eve,
        ks1,
        { type: 'new-query', subject: w.names.ar },
        honestHeader(w.profile, eRandom, w.clock(), eve, ks1),
      ),
    );
    w.net.run();
    expect(newErrors(w, before)[0]).toBe(
      `${w.names.ks1} ${profile === 'patent' ? 'NAME_TAKEN' : 'NOT_AUTHORISED'}`,
    );
    expect(w.ks1.store.get(w.names.ar)?.owner).toBeNull();
  });
});

describe('the replay cache is shared fairly (freshness rule)', () => {
  it('one principal filling its quota is refused; everyone else is still served', () => {
    const { w, eve } = setup('hardened');
    // A KServ1 with a small per-sender quota, holding the same registrations as the world's.
    const ks1 = createKeyServer({
      triple: w.triples.ks1,
      backend: nodeBackend,
      random: seededRandom('ks1-quota'),
      clock: w.clock,
      profile: 'hardened',
      store: createMemoryKeyServerStore(w.ks1.store.list()),
      serves: ['clef'],
      replayPerSender: 8,
    });
    const eRandom = seededRandom('eve-flood');
    const to = { name: w.names.ks1, clef: w.triples.ks1.clef };
    const query = (who: typeof eve) =>
      ks1.receive(
        craftFrame(
          w.backend,
          eRandom,
          w.profile,
          who,
          to,
          { type: 'clef-query', subject: w.names.ve },
          honestHeader(w.profile, eRandom, w.clock(), who, to),
        ),
      ).error?.code ?? 'ok';
    expect(Array.from({ length: 10 }, () => query(eve))).toEqual([
      ...Array(8).fill('ok'),
      'REPLAY_CACHE_FULL',
      'REPLAY_CACHE_FULL',
    ]);
    expect(query(w.triples.ar)).toBe('ok');
    w.advance(w.profile.messageValidityMs);
    expect(query(eve)).toBe('ok');
  });
});

describe('closedModel is a rule, not a profile name', () => {
  it('a custom profile based on hardened keeps the closed model', () => {
    const w = createWorld({
      profile: createProfile({ base: 'hardened', rules: {} }),
      backend: nodeBackend,
      seed: 'closed',
    });
    const eve = generateTriple(nodeBackend, seededRandom('eve-provision'), E_NAME);
    w.net.post(w.ks1.name, w.ks1.register(eve));
    w.issueVeKey();
    const eRandom = seededRandom('eve-closed');
    const ve = { name: w.names.ve, clef: w.veTriple!.clef };
    w.net.inject(
      E_NAME,
      w.names.ve,
      craftFrame(
        w.backend,
        eRandom,
        w.profile,
        eve,
        ve,
        { type: 'program', program: utf8('P_evil') },
        honestHeader(w.profile, eRandom, w.clock(), eve, ve),
      ),
    );
    w.net.run();
    expect(w.net.errors.map((e) => `${e.party} ${e.error.code}`)).toEqual([
      `${w.names.ve} SENDER_NOT_LISTED`,
    ]);
  });
});
