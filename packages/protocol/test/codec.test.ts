import {
  checkPattern,
  createProfile,
  encodeFields,
  FieldReader,
  fromHex,
  isWithin,
  matchesPattern,
  ProtocolError,
  parentName,
  parseName,
  ReplayCache,
  toHex,
  u64,
  utf8,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
  return 'none';
}

describe('TB-14 fields', () => {
  it('encodes each field as a 4-byte big-endian length and the bytes', () => {
    expect(toHex(encodeFields([utf8('CLEF?'), utf8('a.b'), new Uint8Array(0)]))).toBe(
      '00000005434c45463f' + '00000003612e62' + '00000000',
    );
  });

  it('reads back what it wrote, exactly, and nothing more', () => {
    const r = new FieldReader(encodeFields([utf8('x'), u64(2 ** 40 + 5)]));
    expect(r.text(8, 'a')).toBe('x');
    expect(r.u64('b')).toBe(2 ** 40 + 5);
    expect(r.done).toBe(true);
    r.end();
  });

  it('u64 is big-endian over 8 bytes and refuses what is not a safe unsigned integer', () => {
    expect(toHex(u64(0x0102030405))).toBe('0000000102030405');
    expect(code(() => u64(-1))).toBe('ENCODING_BAD_INTEGER');
    expect(code(() => u64(2 ** 53))).toBe('ENCODING_BAD_INTEGER');
    expect(code(() => new FieldReader(encodeFields([fromHex('0020000000000000')])).u64('t'))).toBe(
      'ENCODING_BAD_INTEGER',
    );
  });

  it('checks the limit before slicing and the record end', () => {
    expect(code(() => new FieldReader(encodeFields([new Uint8Array(9)])).bytesField(8, 'f'))).toBe(
      'ENCODING_TOO_LARGE',
    );
    expect(code(() => new FieldReader(fromHex('000000ff00')).bytesField(1000, 'f'))).toBe(
      'ENCODING_TRUNCATED',
    );
    expect(code(() => new FieldReader(fromHex('000000')).bytesField(1000, 'f'))).toBe('ENCODING_TRUNCATED');
    const r = new FieldReader(encodeFields([utf8('a'), utf8('b')]));
    r.text(4, 'a');
    expect(code(() => r.end())).toBe('ENCODING_TRAILING');
    expect(code(() => new FieldReader(encodeFields([fromHex('ff')])).text(4, 't'))).toBe('ENCODING_BAD_UTF8');
  });

  it('fromHex refuses odd or non-hex input', () => {
    expect(code(() => fromHex('abc'))).toBe('ENCODING_BAD_VALUE');
    expect(code(() => fromHex('zz'))).toBe('ENCODING_BAD_VALUE');
  });
});

describe('Names (PROTO-4)', () => {
  it.each([
    ['ar.clefnet.test', 'none'],
    ['a', 'none'],
    ['x-1.y2', 'none'],
    ['', 'NAME_INVALID'],
    ['Ar.test', 'NAME_INVALID'],
    ['-a.test', 'NAME_INVALID'],
    ['a-.test', 'NAME_INVALID'],
    ['a..test', 'NAME_INVALID'],
    ['a.test.', 'NAME_INVALID'],
    ['a_b.test', 'NAME_INVALID'],
    [`${'a'.repeat(64)}.test`, 'NAME_INVALID'],
    [`${'a'.repeat(63)}.test`, 'none'],
    [Array(127).fill('a').join('.'), 'none'], // 253 characters: the most a Name may have
    [`${Array(127).fill('a').join('.')}a`, 'NAME_INVALID'], // 254
  ])('%s -> %s', (text, expected) => {
    expect(code(() => parseName(text))).toBe(expected);
  });

  it('says why a Name is invalid', () => {
    expect(() => parseName('a..b')).toThrow(
      'invalid Name "a..b": empty label (leading, trailing or double dot)',
    );
    expect(() => parseName(`${'a.'.repeat(127)}ab`)).toThrow('longer than 253 characters');
  });

  it('knows the hierarchy and ACL patterns (TB-16)', () => {
    const n = parseName('ve1.anc1.test');
    expect(isWithin(n, parseName('anc1.test'))).toBe(true);
    expect(isWithin(n, parseName('nc1.test'))).toBe(false);
    expect(isWithin(n, n)).toBe(true);
    expect(parentName(n)).toBe('anc1.test');
    expect(parentName(parseName('a'))).toBeUndefined();
    expect(matchesPattern(n, '*')).toBe(true);
    expect(matchesPattern(n, '*.anc1.test')).toBe(true);
    expect(matchesPattern(parseName('anc1.test'), '*.anc1.test')).toBe(false);
    expect(matchesPattern(n, 've1.anc1.test')).toBe(true);
    expect(code(() => checkPattern('*.Bad'))).toBe('NAME_INVALID');
  });
});

describe('profiles', () => {
  it('patent and hardened differ in every rule', () => {
    const p = createProfile('patent').rules;
    const h = createProfile('hardened').rules;
    expect(p).toEqual({
      typeTags: false,
      namesInSignature: false,
      freshness: false,
      answerBinding: false,
      serverScope: false,
      signedErrors: false,
      closedModel: false,
      nameOwnership: { policy: 'overwrite', subtreeOnly: false },
    });
    expect(h).toEqual({
      typeTags: true,
      namesInSignature: true,
      freshness: true,
      answerBinding: true,
      serverScope: true,
      signedErrors: true,
      closedModel: true,
      nameOwnership: { policy: 'reject-if-exists', subtreeOnly: true },
    });
  });

  it('a custom profile switches single rules and is named custom', () => {
    const c = createProfile({ base: 'hardened', rules: { typeTags: false } });
    expect(c.name).toBe('custom');
    expect(c.rules.typeTags).toBe(false);
    expect(c.rules.namesInSignature).toBe(true);
  });

  it('refuses inconsistent settings with CONFIG_INVALID', () => {
    expect(code(() => createProfile({ rules: { answerBinding: true } }))).toBe('CONFIG_INVALID');
    expect(code(() => createProfile({ base: 'hardened', messageValidityMs: 10 ** 7 }))).toBe(
      'CONFIG_INVALID',
    );
    expect(code(() => createProfile('nope' as 'patent'))).toBe('CONFIG_INVALID');
  });
});

describe('replay cache (freshness rule)', () => {
  const hardened = createProfile('hardened');
  const h = (n: number, expiresAt: number) => ({ nonce: new Uint8Array(16).fill(n), issuedAt: 0, expiresAt });

  it('refuses a nonce seen before its expiry, accepts it again after', () => {
    const c = new ReplayCache(10);
    c.admit(hardened, 'a', h(1, 100), 0);
    expect(code(() => c.admit(hardened, 'a', h(1, 100), 50))).toBe('REPLAY');
    c.admit(hardened, 'b', h(1, 100), 50); // same nonce, other sender
    c.admit(hardened, 'a', h(1, 200), 100); // expired entry: a new message may reuse the nonce
    expect(c.size).toBe(2);
  });

  it('is bounded: full of live entries it refuses (fail closed), swept it accepts again', () => {
    const c = new ReplayCache(3);
    for (let i = 0; i < 3; i++) c.admit(hardened, 'a', h(i, 100), 0);
    expect(code(() => c.admit(hardened, 'a', h(9, 100), 10))).toBe('REPLAY_CACHE_FULL');
    expect(c.size).toBe(3);
    c.admit(hardened, 'a', h(9, 300), 100);
    expect(c.size).toBe(1);
  });

  it('does nothing under patent', () => {
    const c = new ReplayCache(1);
    c.admit(createProfile('patent'), 'a', h(1, 100), 0);
    c.admit(createProfile('patent'), 'a', h(1, 100), 0);
    expect(c.size).toBe(0);
  });
});
