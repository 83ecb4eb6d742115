import { describe, expect, it } from 'vitest';
import {
  decap,
  deriveKeyPair,
  EphemeralPool,
  encap,
  generateKeyPair,
  HPKE_MODE,
  type HpkeMode,
  type HpkePsk,
  hpkeOpen,
  hpkeSeal,
  keySchedule,
  labeledExpand,
  labeledExtract,
  type RandomSource,
  seededRandom,
  setupRecipient,
  setupSender,
  systemRandom,
} from '../../src/crypto/index.js';
import { BACKENDS, codeOf, hex, hpkeVectors, toHex } from './vectors.js';

const vectors = hpkeVectors();
const MODE_NAMES = ['base', 'psk', 'auth', 'auth_psk'];
const utf8 = (s: string) => new TextEncoder().encode(s);
const EMPTY = new Uint8Array(0);

describe('RFC 9180 A.2 vector file', () => {
  it('holds one DHKEM(X25519)/HKDF-SHA256/ChaCha20Poly1305 vector per mode, six encryptions each, no exports', () => {
    expect(vectors.map((v) => [v.mode, v.kem_id, v.kdf_id, v.aead_id])).toEqual([
      [0, 0x20, 1, 3],
      [1, 0x20, 1, 3],
      [2, 0x20, 1, 3],
      [3, 0x20, 1, 3],
    ]);
    expect(vectors.map((v) => v.encryptions.map((e) => e.sequence_number))).toEqual(
      Array(4).fill([0, 1, 2, 4, 255, 256]),
    );
    expect(vectors.filter((v) => v.exports !== undefined)).toEqual([]);
  });
});

describe.each(BACKENDS)('HPKE on the %s backend', (_name, backend) => {
  describe.each(vectors.map((v) => [MODE_NAMES[v.mode]!, v] as const))('RFC 9180 A.2 mode %s', (_mode, v) => {
    const psk: HpkePsk | undefined =
      v.psk === undefined ? undefined : { psk: hex(v.psk), pskId: hex(v.psk_id!) };
    const skS = v.skSm === undefined ? undefined : hex(v.skSm);
    const pkS = v.pkSm === undefined ? undefined : hex(v.pkSm);
    const senderOptions = { ...(psk && { psk }), ...(skS && { senderSecret: skS }) };
    const recipientOptions = { ...(psk && { psk }), ...(pkS && { senderPublicKey: pkS }) };
    const info = hex(v.info);

    it('DeriveKeyPair(ikmE), DeriveKeyPair(ikmR) (and ikmS) give the vector key pairs', () => {
      const pairs = [
        ['E', v.ikmE, v.skEm, v.pkEm],
        ['R', v.ikmR, v.skRm, v.pkRm],
        ...(v.ikmS === undefined ? [] : [['S', v.ikmS, v.skSm, v.pkSm]]),
      ];
      for (const [who, ikm, sk, pk] of pairs) {
        const pair = deriveKeyPair(backend, hex(ikm!));
        expect(toHex(pair.secret), `sk${who}m`).toBe(sk);
        expect(toHex(pair.publicKey), `pk${who}m`).toBe(pk);
      }
    });

    it('LabeledExtract/LabeledExpand reproduce DeriveKeyPair by hand (§7.1.3)', () => {
      const prk = labeledExtract(backend, 'kem', EMPTY, 'dkp_prk', hex(v.ikmR));
      expect(toHex(labeledExpand(backend, 'kem', prk, 'sk', EMPTY, 32))).toBe(v.skRm);
    });

    it('Encap/Decap give enc and shared_secret; KeySchedule gives every intermediate value', () => {
      const { enc, sharedSecret } = encap(backend, hex(v.pkRm), { secret: hex(v.skEm) }, skS);
      expect(toHex(enc)).toBe(v.enc);
      expect(toHex(sharedSecret)).toBe(v.shared_secret);
      expect(toHex(decap(backend, enc, hex(v.skRm), pkS))).toBe(v.shared_secret);
      const ks = keySchedule(backend, v.mode as HpkeMode, sharedSecret, info, psk);
      expect(toHex(ks.keyScheduleContext), 'key_schedule_context').toBe(v.key_schedule_context);
      expect(toHex(ks.secret), 'secret').toBe(v.secret);
      expect(toHex(ks.key), 'key').toBe(v.key);
      expect(toHex(ks.baseNonce), 'base_nonce').toBe(v.base_nonce);
      expect(toHex(ks.exporterSecret), 'exporter_secret').toBe(v.exporter_secret);
    });

    it('the sender context seals each encryption at its sequence number; the recipient opens them in order', () => {
      const sender = setupSender(backend, hex(v.pkRm), info, { secret: hex(v.skEm) }, senderOptions);
      expect(toHex(sender.enc)).toBe(v.enc);
      const wanted = new Map(v.encryptions.map((e) => [e.sequence_number, e]));
      const sealed: { aad: Uint8Array; ct: Uint8Array }[] = [];
      for (let seq = 0; seq <= 256; seq++) {
        const e = wanted.get(seq);
        const aad = e === undefined ? utf8(`filler ${seq}`) : hex(e.aad);
        expect(sender.seq).toBe(seq);
        const ct = sender.seal(aad, e === undefined ? EMPTY : hex(e.pt));
        sealed.push({ aad, ct });
        if (e !== undefined) {
          expect(toHex(ct), `sequence_number ${seq}`).toBe(e.ct);
          // The vector's nonce is base_nonce XOR seq: sealing with it directly gives the same bytes.
          expect(toHex(backend.aeadSeal(hex(v.key), hex(e.nonce), aad, hex(e.pt))), `nonce ${seq}`).toBe(
            e.ct,
          );
        }
      }
      const recipient = setupRecipient(backend, hex(v.enc), hex(v.skRm), info, recipientOptions);
      for (const [seq, { aad, ct }] of sealed.entries()) {
        const pt = recipient.open(aad, ct);
        const e = wanted.get(seq);
        if (e !== undefined) expect(toHex(pt), `sequence_number ${seq}`).toBe(e.pt);
      }
      expect(recipient.seq).toBe(257);
      const fresh = setupRecipient(backend, hex(v.enc), hex(v.skRm), info, recipientOptions);
      for (const e of v.encryptions) {
        expect(
          toHex(fresh.openAt(e.sequence_number, hex(e.aad), hex(e.ct))),
          `openAt ${e.sequence_number}`,
        ).toBe(e.pt);
      }
      expect(fresh.seq).toBe(0);
      for (const x of v.exports ?? []) {
        const ctx = hex(x.exporter_context);
        expect(toHex(sender.export(ctx, x.L)), `export ${x.exporter_context}`).toBe(x.exported_value);
        expect(toHex(recipient.export(ctx, x.L)), `export ${x.exporter_context}`).toBe(x.exported_value);
      }
      expect(recipient.export(utf8('ctx'), 42)).toEqual(sender.export(utf8('ctx'), 42));
    });

    it('single-shot seal gives enc and the sequence-0 ciphertext; single-shot open inverts it', () => {
      const e0 = v.encryptions[0]!;
      const out = hpkeSeal(
        backend,
        hex(v.pkRm),
        info,
        hex(e0.aad),
        hex(e0.pt),
        { secret: hex(v.skEm) },
        senderOptions,
      );
      expect(toHex(out.enc)).toBe(v.enc);
      expect(toHex(out.ciphertext)).toBe(e0.ct);
      const pt = hpkeOpen(backend, hex(v.skRm), out.enc, info, hex(e0.aad), out.ciphertext, recipientOptions);
      expect(toHex(pt)).toBe(e0.pt);
    });
  });

  it('RFC 9180 A.2.1.2 base-mode exported values (typed in from the RFC: the JSON has none)', () => {
    const v = vectors[0]!;
    const exports = [
      ['', '4bbd6243b8bb54cec311fac9df81841b6fd61f56538a775e7c80a9f40160606e'],
      ['00', '8c1df14732580e5501b00f82b10a1647b40713191b7c1240ac80e2b68808ba69'],
      ['54657374436f6e74657874', '5acb09211139c43b3090489a9da433e8a30ee7188ba8b0a9a1ccf0c229283e53'],
    ];
    const sender = setupSender(backend, hex(v.pkRm), hex(v.info), { secret: hex(v.skEm) });
    const receiver = setupRecipient(backend, hex(v.enc), hex(v.skRm), hex(v.info));
    for (const [context, value] of exports) {
      expect(toHex(sender.export(hex(context!), 32)), `exporter_context "${context}"`).toBe(value);
      expect(toHex(receiver.export(hex(context!), 32)), `exporter_context "${context}"`).toBe(value);
    }
  });

  it('generateKeyPair takes 32 bytes from the RandomSource', () => {
    const pair = generateKeyPair(backend, seededRandom('pair'));
    expect(pair.secret).toEqual(seededRandom('pair')(32));
    expect(pair.publicKey).toEqual(backend.x25519PublicKey(pair.secret));
  });

  const recipient = deriveKeyPair(backend, new Uint8Array(32).fill(7));
  const info = utf8('clefnet test');

  it('open throws CRYPTO_OPEN for a tampered ciphertext, wrong aad, info or key, and keeps seq', () => {
    const { enc, ciphertext } = hpkeSeal(
      backend,
      recipient.publicKey,
      info,
      EMPTY,
      utf8('m'),
      seededRandom('e'),
    );
    const other = deriveKeyPair(backend, new Uint8Array(32).fill(8));
    const tampered = Uint8Array.from(ciphertext);
    tampered[0]! ^= 1;
    expect(codeOf(() => hpkeOpen(backend, recipient.secret, enc, info, EMPTY, tampered))).toBe('CRYPTO_OPEN');
    expect(codeOf(() => hpkeOpen(backend, recipient.secret, enc, info, utf8('x'), ciphertext))).toBe(
      'CRYPTO_OPEN',
    );
    expect(codeOf(() => hpkeOpen(backend, recipient.secret, enc, EMPTY, EMPTY, ciphertext))).toBe(
      'CRYPTO_OPEN',
    );
    expect(codeOf(() => hpkeOpen(backend, other.secret, enc, info, EMPTY, ciphertext))).toBe('CRYPTO_OPEN');
    expect(
      codeOf(() => hpkeOpen(backend, recipient.secret, enc, info, EMPTY, ciphertext.subarray(0, 15))),
    ).toBe('CRYPTO_OPEN');
    const ctx = setupRecipient(backend, enc, recipient.secret, info);
    expect(codeOf(() => ctx.open(EMPTY, tampered))).toBe('CRYPTO_OPEN');
    expect(ctx.seq).toBe(0);
    expect(ctx.open(EMPTY, ciphertext)).toEqual(utf8('m'));
    expect(ctx.seq).toBe(1);
  });

  it('throws CRYPTO_DH for a low-order enc or recipient key (all-zero DH, §7.1.4)', () => {
    const lowOrder = [new Uint8Array(32), hex(`01${'00'.repeat(31)}`), hex(`ec${'ff'.repeat(30)}7f`)];
    for (const pk of lowOrder) {
      expect(
        codeOf(() => hpkeSeal(backend, pk, info, EMPTY, EMPTY, seededRandom('e'))),
        toHex(pk),
      ).toBe('CRYPTO_DH');
      expect(
        codeOf(() => hpkeOpen(backend, recipient.secret, pk, info, EMPTY, new Uint8Array(16))),
        toHex(pk),
      ).toBe('CRYPTO_DH');
    }
  });

  it('throws CRYPTO_INPUT for wrong lengths and inconsistent PSK inputs', () => {
    const r = seededRandom('e');
    const seal =
      (opts: Parameters<typeof hpkeSeal>[6], pk = recipient.publicKey) =>
      () =>
        hpkeSeal(backend, pk, info, EMPTY, EMPTY, r, opts);
    expect(codeOf(seal({}, recipient.publicKey.subarray(1)))).toBe('CRYPTO_INPUT');
    expect(codeOf(seal({ psk: { psk: new Uint8Array(31), pskId: utf8('id') } }))).toBe('CRYPTO_INPUT');
    expect(codeOf(seal({ psk: { psk: new Uint8Array(32), pskId: EMPTY } }))).toBe('CRYPTO_INPUT');
    expect(codeOf(seal({ senderSecret: new Uint8Array(31) }))).toBe('CRYPTO_INPUT');
    expect(
      codeOf(() =>
        hpkeSeal(backend, recipient.publicKey, info, EMPTY, EMPTY, { secret: new Uint8Array(31) }),
      ),
    ).toBe('CRYPTO_INPUT');
    expect(
      codeOf(() => hpkeOpen(backend, recipient.secret, new Uint8Array(33), info, EMPTY, new Uint8Array(16))),
    ).toBe('CRYPTO_INPUT');
    const shared = new Uint8Array(32);
    expect(codeOf(() => keySchedule(backend, HPKE_MODE.psk, shared, info))).toBe('CRYPTO_INPUT');
    const psk = { psk: new Uint8Array(32), pskId: utf8('id') };
    expect(codeOf(() => keySchedule(backend, HPKE_MODE.base, shared, info, psk))).toBe('CRYPTO_INPUT');
    expect(codeOf(() => deriveKeyPair(backend, new Uint8Array(31)))).toBe('CRYPTO_INPUT');
    const ctx = setupSender(backend, recipient.publicKey, info, r);
    expect(codeOf(() => ctx.export(EMPTY, 255 * 32 + 1))).toBe('CRYPTO_INPUT');
    expect(ctx.export(EMPTY, 255 * 32).length).toBe(8160);
  });

  it('single-shot Seal and Open agree with the contexts of §5.2 (sequence number 0)', () => {
    const a = hpkeSeal(backend, recipient.publicKey, info, utf8('aad'), utf8('one'), seededRandom('ss'));
    const ctx = setupSender(backend, recipient.publicKey, info, seededRandom('ss'));
    expect(ctx.enc).toEqual(a.enc);
    expect(ctx.seal(utf8('aad'), utf8('one'))).toEqual(a.ciphertext);
    const opened = setupRecipient(backend, a.enc, recipient.secret, info);
    expect(opened.open(utf8('aad'), a.ciphertext)).toEqual(utf8('one'));
    expect(hpkeOpen(backend, recipient.secret, a.enc, info, utf8('aad'), a.ciphertext)).toEqual(utf8('one'));
  });

  it('the kept key-schedule inputs follow an info array changed in place, and are never handed out', () => {
    const mutable = utf8('info one');
    const ks = (i: Uint8Array) => keySchedule(backend, HPKE_MODE.base, new Uint8Array(32).fill(1), i);
    const first = ks(mutable);
    first.keyScheduleContext.fill(0); // the caller's copy: must not reach the kept one
    expect(ks(mutable)).toEqual(ks(utf8('info one')));
    mutable.set(utf8('info two'));
    expect(ks(mutable)).toEqual(ks(utf8('info two')));
    expect(toHex(ks(mutable).key)).not.toBe(toHex(ks(utf8('info one')).key));
    const sealed = hpkeSeal(backend, recipient.publicKey, mutable, EMPTY, utf8('m'), seededRandom('mut'));
    expect(
      hpkeOpen(backend, recipient.secret, sealed.enc, utf8('info two'), EMPTY, sealed.ciphertext),
    ).toEqual(utf8('m'));
    expect(
      codeOf(() =>
        hpkeOpen(backend, recipient.secret, sealed.enc, utf8('info one'), EMPTY, sealed.ciphertext),
      ),
    ).toBe('CRYPTO_OPEN');
  });

  it('takes the ephemeral secret from a RandomSource, wipes it after use, and replays under a seed', () => {
    const handed: Uint8Array[] = [];
    const spy: RandomSource = (n) => {
      const b = systemRandom(n);
      handed.push(b);
      return b;
    };
    const out = hpkeSeal(backend, recipient.publicKey, info, EMPTY, utf8('hi'), spy);
    expect(handed.map((b) => b.length)).toEqual([32]);
    expect(handed[0]).toEqual(new Uint8Array(32));
    expect(hpkeOpen(backend, recipient.secret, out.enc, info, EMPTY, out.ciphertext)).toEqual(utf8('hi'));
    const a = hpkeSeal(backend, recipient.publicKey, info, EMPTY, utf8('hi'), seededRandom('replay'));
    const b = hpkeSeal(backend, recipient.publicKey, info, EMPTY, utf8('hi'), seededRandom('replay'));
    expect(b).toEqual(a);
    expect(a.enc).toEqual(backend.x25519PublicKey(seededRandom('replay')(32)));
  });

  describe('EphemeralPool', () => {
    /** A source that keeps every array it hands out (to see them wiped). */
    const recording = (seed: string) => {
      const inner = seededRandom(seed);
      const handed: Uint8Array[] = [];
      const random: RandomSource = (n) => {
        const b = inner(n);
        handed.push(b);
        return b;
      };
      return { random, handed };
    };
    /** A scheduler that runs nothing until the test says so. */
    const manual = () => {
      const tasks: (() => void)[] = [];
      return { tasks, schedule: (t: () => void) => void tasks.push(t) };
    };

    it('seals with the pairs in the order they were made, each once, wiping each secret after use', () => {
      const { random, handed } = recording('pool');
      const pool = new EphemeralPool(backend, random, { size: 3 });
      pool.fill();
      expect(pool.ready).toBe(3);
      expect(handed.map((b) => b.length)).toEqual([32, 32, 32]);
      const expected = (() => {
        const again = seededRandom('pool');
        return [0, 1, 2].map(() => backend.x25519PublicKey(again(32)));
      })();
      const sealed = [0, 1, 2].map((i) =>
        hpkeSeal(backend, recipient.publicKey, info, EMPTY, utf8(`m${i}`), pool),
      );
      expect(sealed.map((x) => toHex(x.enc))).toEqual(expected.map(toHex));
      expect(handed).toEqual([new Uint8Array(32), new Uint8Array(32), new Uint8Array(32)]);
      expect(pool.ready).toBe(0);
      sealed.forEach((x, i) => {
        expect(hpkeOpen(backend, recipient.secret, x.enc, info, EMPTY, x.ciphertext)).toEqual(utf8(`m${i}`));
      });
      // Empty and without a scheduler: the next pair is made as the message is sealed.
      const next = hpkeSeal(backend, recipient.publicKey, info, EMPTY, utf8('m3'), pool);
      expect(handed).toHaveLength(4);
      expect(handed[3]).toEqual(new Uint8Array(32));
      expect(next.enc).toEqual(backend.x25519PublicKey(seededRandom('pool')(32 * 4).subarray(96)));
      expect(pool.ready).toBe(0);
    });

    it('a take schedules one refill task at a time, each making one pair, until the pool is full', () => {
      const { random, handed } = recording('refill');
      const { tasks, schedule } = manual();
      const pool = new EphemeralPool(backend, random, { size: 2, schedule });
      pool.take();
      pool.take();
      expect(handed).toHaveLength(2);
      expect(tasks).toHaveLength(1); // the second take found a refill already scheduled
      tasks.shift()!();
      expect([pool.ready, handed.length, tasks.length]).toEqual([1, 3, 1]);
      tasks.shift()!();
      expect([pool.ready, handed.length, tasks.length]).toEqual([2, 4, 0]);
      const pair = pool.take();
      expect(pair.publicKey).toEqual(backend.x25519PublicKey(handed[2]!));
      expect(pair.secret).toBe(handed[2]);
      expect(tasks).toHaveLength(1);
    });

    it('a refill task that fails stops refilling; the next take fails in its caller', () => {
      let fail = false;
      const random: RandomSource = (n) => (fail ? new Uint8Array(n - 1) : systemRandom(n));
      const { tasks, schedule } = manual();
      const pool = new EphemeralPool(backend, random, { size: 2, schedule });
      pool.take();
      fail = true;
      tasks.shift()!();
      expect([pool.ready, tasks.length]).toEqual([0, 0]);
      expect(codeOf(() => hpkeSeal(backend, recipient.publicKey, info, EMPTY, utf8('x'), pool))).toBe(
        'CRYPTO_INPUT',
      );
    });

    it('zeroes the secret of a pair also when the seal fails, and in auth mode', () => {
      const { random, handed } = recording('pool-edges');
      const pool = new EphemeralPool(backend, random, { size: 2 });
      pool.fill();
      expect(codeOf(() => hpkeSeal(backend, new Uint8Array(32), info, EMPTY, utf8('x'), pool))).toBe(
        'CRYPTO_DH',
      );
      expect(handed[0]).toEqual(new Uint8Array(32));
      const sender = generateKeyPair(backend, seededRandom('pool-sender'));
      const sealed = hpkeSeal(backend, recipient.publicKey, info, EMPTY, utf8('auth'), pool, {
        senderSecret: sender.secret,
      });
      expect(handed[1]).toEqual(new Uint8Array(32));
      expect(
        hpkeOpen(backend, recipient.secret, sealed.enc, info, EMPTY, sealed.ciphertext, {
          senderPublicKey: sender.publicKey,
        }),
      ).toEqual(utf8('auth'));
      expect(sender.secret).not.toEqual(new Uint8Array(32)); // the sender's static key is not the pool's
    });

    it('close() zeroes the pairs not taken and stops refilling; take() then makes each pair itself', () => {
      const { random, handed } = recording('pool-close');
      const { tasks, schedule } = manual();
      const pool = new EphemeralPool(backend, random, { size: 3, schedule });
      pool.fill();
      pool.take(); // schedules a refill
      expect([pool.ready, tasks.length]).toEqual([2, 1]);
      pool.close();
      expect(pool.ready).toBe(0);
      expect(handed.slice(1)).toEqual([new Uint8Array(32), new Uint8Array(32)]);
      tasks.shift()!(); // the refill scheduled before close makes nothing
      pool.fill();
      expect([pool.ready, handed.length, tasks.length]).toEqual([0, 3, 0]);
      const sealed = hpkeSeal(backend, recipient.publicKey, info, EMPTY, utf8('late'), pool);
      expect([handed.length, tasks.length]).toEqual([4, 0]);
      expect(handed[3]).toEqual(new Uint8Array(32));
      expect(hpkeOpen(backend, recipient.secret, sealed.enc, info, EMPTY, sealed.ciphertext)).toEqual(
        utf8('late'),
      );
      pool.close(); // idempotent
    });

    it('refuses a size below 1 (CONFIG_INVALID)', () => {
      expect(codeOf(() => new EphemeralPool(backend, systemRandom, { size: 0 }))).toBe('CONFIG_INVALID');
      expect(codeOf(() => new EphemeralPool(backend, systemRandom, { size: 1.5 }))).toBe('CONFIG_INVALID');
    });
  });
});
