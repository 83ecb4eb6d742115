/**
 * ATK-1 and ATK-2 of SPEC §17.2 replayed on the in-memory harness: each succeeds under `patent`
 * (the observable of the spec is asserted) and fails under `hardened` with a named error.
 */
import {
  craftFrame,
  createWorld,
  honestHeader,
  type InFlight,
  nodeBackend,
  openFrame,
  type ProfileName,
  readPayload,
  resealFrame,
  seededRandom,
  toHex,
  utf8,
  type World,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';

const V1 = utf8('module v1 (vulnerable)');
const V2 = utf8('module v2 (fixed)');
const EVIL = utf8('attacker module');

function world(profile: ProfileName): World {
  const w = createWorld({ profile, backend: nodeBackend, seed: `atk-${profile}` });
  w.issueVeKey();
  return w;
}

function lastFrame(w: World, pred: (f: InFlight) => boolean): InFlight {
  const f = [...w.net.wire].reverse().find(pred);
  if (f === undefined) throw new Error('no such frame on the wire');
  return f;
}

function installedTexts(w: World): string[] {
  return w.programs.map((p) => Buffer.from(p.program).toString());
}

describe('ATK-1: replay of step 7 (rollback)', () => {
  function attack(profile: ProfileName, opts: { rekeyBetween?: boolean; waitMs?: number } = {}) {
    const w = world(profile);
    w.deploy(V1, false);
    const m7v1 = lastFrame(w, (f) => f.step === 'M7').bytes; // E records it
    w.advance(1_000);
    w.deploy(V2, false);
    if (opts.rekeyBetween) w.issueVeKey(); // KEY-9: the VE key rotates
    w.advance(opts.waitMs ?? 1_000);
    const before = w.net.errors.length;
    w.net.inject(w.names.ar, w.names.ve, m7v1);
    w.net.run();
    return { w, newErrors: w.net.errors.slice(before).map((e) => `${e.party} ${e.error.code}`) };
  }

  it('patent: the ANC re-installs v1 after v2, as often as E replays it', () => {
    const { w, newErrors } = attack('patent');
    expect(newErrors).toEqual([]);
    expect(installedTexts(w)).toEqual([
      'module v1 (vulnerable)',
      'module v2 (fixed)',
      'module v1 (vulnerable)',
    ]);
    // Every replay costs the ANC a private-key operation and a KServ1 round trip.
    const m9a = w.net.wire.filter((f) => f.step === 'M9a').length;
    w.net.inject(w.names.ar, w.names.ve, lastFrame(w, (f) => f.step === 'INJECTED').bytes);
    w.net.run();
    expect(installedTexts(w).at(-1)).toBe('module v1 (vulnerable)');
    expect(w.programs).toHaveLength(4);
    expect(w.net.wire.filter((f) => f.step === 'M9a').length).toBe(m9a + 1);
  });

  it('patent, limit of the attack: it fails once the VE key was rotated (KEY-9)', () => {
    const { w, newErrors } = attack('patent', { rekeyBetween: true });
    expect(newErrors).toEqual([`${w.names.ve} CRYPTO_OPEN`]);
    expect(installedTexts(w)).toEqual(['module v1 (vulnerable)', 'module v2 (fixed)']);
  });

  it('hardened: the replay within the validity period is refused as REPLAY', () => {
    const { w, newErrors } = attack('hardened');
    expect(newErrors).toEqual([`${w.names.ve} REPLAY`]);
    expect(installedTexts(w)).toEqual(['module v1 (vulnerable)', 'module v2 (fixed)']);
  });

  it('hardened: the replay after the validity period is refused as STALE', () => {
    const { w, newErrors } = attack('hardened', { waitMs: 60_000 });
    expect(newErrors).toEqual([`${w.names.ve} STALE`]);
    expect(installedTexts(w)).toEqual(['module v1 (vulnerable)', 'module v2 (fixed)']);
  });
});

describe('ATK-2 variant A: stale key-server answer after re-keying, against the AR', () => {
  function attack(profile: ProfileName) {
    const w = world(profile);
    w.deploy(utf8('first module'), false);
    const m3old = lastFrame(w, (f) => f.step === 'CLEF-ANS' && f.to === w.names.ar).bytes; // E records M3_old
    const leaked = w.veTriple!; // Key-ANC_old leaks to E
    w.advance(5_000);
    w.issueVeKey(); // the ANC is re-keyed; KServ1 now holds Clef-ANC_new
    const fresh = w.veTriple!;
    expect(toHex(fresh.clef.sign)).not.toBe(toHex(leaked.clef.sign));
    let stolen: string | undefined;
    const eRandom = seededRandom('eve');
    w.net.tap = (f) => {
      if (f.step === 'M1') {
        // E drops the AR's new query and answers with the recorded M3_old.
        w.net.inject(w.names.ks1, w.names.ar, m3old);
        return 'drop';
      }
      if (f.step === 'M7') {
        // E opens the program with Key-ANC_old, reads it, re-seals it to Clef-ANC_new.
        const opened = openFrame(w.backend, leaked.key, f.bytes);
        stolen = Buffer.from(readPayload(w.profile, opened.envelope, ['program']).body.program).toString();
        return resealFrame(w.backend, eRandom, opened, { name: w.names.ve, clef: fresh.clef });
      }
      return 'pass';
    };
    const before = w.net.errors.length;
    w.deploy(utf8('second module: confidential'), false, 'second');
    return { w, stolen, newErrors: w.net.errors.slice(before).map((e) => `${e.party} ${e.error.code}`) };
  }

  it('patent: the AR accepts Clef-ANC_old, E reads the program, the ANC notices nothing', () => {
    const { w, stolen, newErrors } = attack('patent');
    expect(newErrors).toEqual([]);
    expect(stolen).toBe('second module: confidential');
    expect(installedTexts(w)).toEqual(['first module', 'second module: confidential']);
    expect(w.ar.deployment('second')?.state).toBe('sent');
  });

  it('hardened: the AR refuses M3_old as UNSOLICITED_ANSWER and sends nothing to the ANC', () => {
    const { w, stolen, newErrors } = attack('hardened');
    expect(newErrors).toEqual([`${w.names.ar} UNSOLICITED_ANSWER`]);
    expect(stolen).toBeUndefined();
    expect(w.ar.deployment('second')?.state).toBe('resolving');
    // With its query dropped, the deployment fails on the timeout instead of going ahead.
    w.advance(30_000);
    w.net.post(w.ar.name, w.ar.expire());
    expect(w.ar.deployment('second')).toMatchObject({ state: 'failed', code: 'TIMEOUT' });
    expect(installedTexts(w)).toEqual(['first module']);
  });
});

describe('ATK-2 variant B: revoked AR key and a recorded M9b, against the ANC', () => {
  function attack(profile: ProfileName) {
    const w = world(profile);
    w.deploy(utf8('genuine module'), false);
    const m9bOld = lastFrame(w, (f) => f.to === w.names.ve && f.from === w.names.ks1).bytes;
    const leakedAr = w.triples.ar; // Key-AR_old leaks; AR is re-keyed at KServ1
    const newAr = {
      ...leakedAr,
      clef: { sign: new Uint8Array(32).fill(7), seal: new Uint8Array(32).fill(9) },
    };
    w.net.post(w.ks1.name, w.ks1.register(newAr));
    w.advance(5_000);
    const eRandom = seededRandom('eve-b');
    const evil = craftFrame(
      w.backend,
      eRandom,
      w.profile,
      leakedAr,
      { name: w.names.ve, clef: w.veTriple!.clef },
      { type: 'program', program: EVIL },
      honestHeader(w.profile, eRandom, w.clock(), leakedAr, { name: w.names.ve, clef: w.veTriple!.clef }),
    );
    w.net.tap = (f) => {
      if (f.step === 'M9a') {
        w.net.inject(w.names.ks1, w.names.ve, m9bOld); // E drops M9a and answers with M9b_old
        return 'drop';
      }
      return 'pass';
    };
    const before = w.net.errors.length;
    w.net.inject(w.names.ar, w.names.ve, evil);
    w.net.run();
    return { w, newErrors: w.net.errors.slice(before).map((e) => `${e.party} ${e.error.code}`) };
  }

  it('patent: the ANC verifies the attacker program with Clef-AR_old and installs it under the AR Name', () => {
    const { w, newErrors } = attack('patent');
    expect(newErrors).toEqual([]);
    expect(w.programs.map((p) => [p.sender, Buffer.from(p.program).toString()])).toEqual([
      [w.names.ar, 'genuine module'],
      [w.names.ar, 'attacker module'],
    ]);
  });

  it('hardened: the ANC refuses M9b_old as UNSOLICITED_ANSWER and never installs the program', () => {
    const { w, newErrors } = attack('hardened');
    expect(newErrors).toEqual([`${w.names.ve} UNSOLICITED_ANSWER`]);
    expect(installedTexts(w)).toEqual(['genuine module']);
    w.advance(30_000);
    const outcome = w.net.post(w.ve!.name, w.ve!.expire());
    expect(outcome.events.filter((e) => e.type === 'rejected').map((e) => e.code)).toEqual(['TIMEOUT']);
    expect(w.ve!.parkedMessages).toBe(0);
    expect(installedTexts(w)).toEqual(['genuine module']);
  });
});

describe('ATK-1 variant: rollback by holding back the older M7 and delivering it after the newer one', () => {
  function attack(profile: ProfileName) {
    const w = world(profile);
    let held: InFlight | undefined;
    w.net.tap = (f) => {
      if (f.step === 'M7' && held === undefined) {
        held = f;
        return 'drop';
      }
      return 'pass';
    };
    w.deploy(V1, false);
    w.advance(2_000);
    w.deploy(V2, false);
    w.advance(2_000);
    const before = w.net.errors.length;
    w.net.inject(w.names.ar, w.names.ve, held!.bytes);
    w.net.run();
    return { w, newErrors: w.net.errors.slice(before).map((e) => `${e.party} ${e.error.code}`) };
  }

  it('patent: v1 is installed after v2', () => {
    const { w, newErrors } = attack('patent');
    expect(newErrors).toEqual([]);
    expect(installedTexts(w)).toEqual(['module v2 (fixed)', 'module v1 (vulnerable)']);
  });

  it('hardened: the older push is refused as STALE (pushes are accepted in issue order), before step 9', () => {
    const { w, newErrors } = attack('hardened');
    expect(newErrors).toEqual([`${w.names.ve} STALE`]);
    expect(installedTexts(w)).toEqual(['module v2 (fixed)']);
    expect(w.net.wire.filter((f) => f.step === 'M9a')).toHaveLength(1);
  });
});

describe('ATK-15 (a) and (b): revocation is not carried by the protocol (with Clef caching on)', () => {
  function cached(profile: ProfileName) {
    const w = createWorld({ profile, backend: nodeBackend, seed: `atk15-${profile}`, clefCache: true });
    w.issueVeKey();
    w.deploy(utf8('first'), false, 'first');
    return w;
  }

  it.each(['patent', 'hardened'] as const)(
    '%s (a): after the ANC is revoked at KServ1, the AR keeps sealing to the cached Clef until it expires',
    (profile) => {
      const w = cached(profile);
      w.net.post(w.ks1.name, w.ks1.revoke(w.names.ve));
      w.advance(60_000);
      const m1 = w.net.wire.filter((f) => f.step === 'M1').length;
      w.deploy(utf8('second'), false, 'second');
      expect(w.ar.deployment('second')?.state).toBe('sent'); // no M1: sealed to the revoked Clef
      expect(w.net.wire.filter((f) => f.step === 'M1').length).toBe(m1);
      w.advance(w.profile.answerValidityMs);
      w.deploy(utf8('third'), false, 'third');
      // patent: the cached Clef never expires; hardened: its validity period ended, KServ1 says REVOKED.
      expect(w.ar.deployment('third')).toMatchObject(
        profile === 'patent' ? { state: 'sent' } : { state: 'failed', code: 'REMOTE_ERROR' },
      );
    },
  );

  it.each(['patent', 'hardened'] as const)(
    '%s (b): after the AR is revoked at KServ1, the ANC keeps accepting programs under the cached Clef-AR until it expires',
    (profile) => {
      const w = cached(profile);
      w.net.post(w.ks1.name, w.ks1.revoke(w.names.ar));
      const eRandom = seededRandom('eve-15b');
      const ve = { name: w.names.ve, clef: w.veTriple!.clef };
      const push = (text: string) => {
        w.net.inject(
          w.names.ar,
          w.names.ve,
          craftFrame(
            w.backend,
            eRandom,
            w.profile,
            w.triples.ar, // the revoked (leaked) Key-AR
            ve,
            { type: 'program', program: utf8(text) },
            honestHeader(w.profile, eRandom, w.clock(), w.triples.ar, ve),
          ),
        );
        w.net.run();
      };
      w.advance(1_000);
      push('signed with the revoked key');
      expect(installedTexts(w).at(-1)).toBe('signed with the revoked key');
      w.advance(w.profile.answerValidityMs);
      push('later still');
      expect(installedTexts(w).at(-1)).toBe(
        profile === 'patent' ? 'later still' : 'signed with the revoked key',
      );
    },
  );
});
