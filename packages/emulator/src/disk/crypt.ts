/**
 * Transparent partition encryption (CRYPT-1..10, TB-10, AMB-11): the encryption part 90 and
 * decryption part 92 of Fig. 11A, as a block device over the partition. The guest sees plaintext
 * sectors and nothing else (CRYPT-4); the disk holds only ciphertext.
 *
 * Data: each partition has its own random 64-byte data key ({@link generateDataKey}); sector b of the
 * view is XTS-AES-256 (IEEE 1619) of one 512-byte data unit with the tweak b as 16 bytes
 * little-endian, so equal sectors at different blocks differ on disk. XTS has no integrity: a
 * changed sector decrypts to garbage, not to an error (as for the hardware the guest believes it has).
 *
 * Key: the data key is stored wrapped, in a small self-describing header the caller keeps (e.g. in
 * `ve/<name>/diskkey`, realfs.ts). Two schemes (CRYPT-7: each partition chooses):
 * - `machine` (CRYPT-9, claim 30, KEY-1): the data key sealed with HPKE (RFC 9180 base mode) to the
 *   machine's X25519 public key, the "real-environment public key"; only the holder of the machine
 *   Key unwraps it, so the disk is unreadable on another machine (CRYPT-2).
 * - `two-level` (CRYPT-3, [0034]): a key-encryption key derived from the machine's X25519 secret AND a
 *   user passphrase (PBKDF2-HMAC-SHA256 of the passphrase with the header's salt and iteration count,
 *   then HKDF-SHA256 over both secrets) seals the data key with ChaCha20-Poly1305.
 * The literal block-by-block public-key reading of claim 30 is literal.ts.
 *
 * Header (TB-14 fields, each a 4-byte big-endian length then the bytes):
 *
 * | # | field     | content                                                                  |
 * |---|-----------|--------------------------------------------------------------------------|
 * | 0 | magic     | "CLDK"                                                                   |
 * | 1 | version   | one byte, 1                                                              |
 * | 2 | scheme    | "machine" or "two-level"                                                 |
 * | 3 | cipher    | "xts-aes-256" (the data cipher the key is for)                           |
 * | 4 | partition | the partition's name (1..64 bytes of UTF-8)                              |
 * | 5 | machine   | the machine's X25519 public key (32 bytes)                               |
 * | 6 | enc       | machine: the HPKE encapsulated key (32 bytes)                            |
 * | 6 | salt      | two-level: PBKDF2 salt (16 bytes); then 7: iterations (u64 BE, 1000..10^7) |
 * | . | sealed    | last: the data key sealed, 64 + 16 bytes                                 |
 *
 * The AEAD's associated data is the encoding of every field before `sealed`, so no field can be
 * changed without the unwrap failing. Domain separation: HPKE info "clefnet disk key v1 machine";
 * two-level HKDF info "clefnet disk key v1 two-level" ‖ 0 ‖ partition, giving the 32-byte key and
 * 12-byte nonce (the salt is fresh per wrap, so the key is never reused).
 *
 * Every failure to unwrap is VmmError DISK_KEY_REFUSED, `meta.reason` one of: `damaged` (not a
 * header), `other-machine` (made for another machine's key), `passphrase-required`, `partition`
 * (made for another partition than the one expected), `refused` (wrong passphrase, or tampered).
 */
import {
  type Clef,
  type CryptoBackend,
  encodeFields,
  FieldReader,
  fromUtf8,
  hpkeOpen,
  hpkeSeal,
  type Key,
  type RandomSource,
  u64,
  utf8,
} from '@clefnet/protocol';
import { type BlockBackend, SECTOR_SIZE } from '../devices/disk.js';
import { VmmError } from '../vmm/errors.js';
import { checkAccess } from './block.js';

export const DATA_KEY_BYTES = 64;
export const DISK_KEY_MAGIC = 'CLDK';
export const DISK_KEY_VERSION = 1;
export const DISK_CIPHER = 'xts-aes-256';
export const PBKDF2_DEFAULT_ITERATIONS = 600_000;
export const PBKDF2_MIN_ITERATIONS = 1000;
export const PBKDF2_MAX_ITERATIONS = 10_000_000;
const SALT_BYTES = 16;
const SEALED_BYTES = DATA_KEY_BYTES + 16;
const MAX_PARTITION_NAME = 64;
const INFO_MACHINE = utf8('clefnet disk key v1 machine');
const INFO_TWO_LEVEL = utf8('clefnet disk key v1 two-level');

export type DiskKeyScheme = 'machine' | 'two-level';

/** The halves of an XTS key must differ (IEEE 1619 allows equal ones; FIPS 140-3 and the backends do not). */
function halvesDiffer(key: Uint8Array): boolean {
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= key[i]! ^ key[32 + i]!;
  return diff !== 0;
}

function checkDataKey(dataKey: Uint8Array): void {
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_BYTES || !halvesDiffer(dataKey))
    throw new VmmError('CONFIG_INVALID', `a data key is ${DATA_KEY_BYTES} bytes with two different halves`);
}

/** A fresh data key from `random`, drawn again in the (astronomically unlikely) case of equal halves. */
export function generateDataKey(random: RandomSource): Uint8Array {
  for (let attempt = 0; attempt < 4; attempt++) {
    const key = random(DATA_KEY_BYTES);
    if (key.length === DATA_KEY_BYTES && halvesDiffer(key)) return key;
    key.fill(0);
  }
  throw new VmmError('CONFIG_INVALID', 'the random source keeps giving keys with equal halves: it is broken');
}

/**
 * `dev` seen through XTS-AES-256 under `dataKey` (copied; the caller may wipe its own). Each
 * access moves all its sectors in one call to `dev` and encrypts or decrypts them in one backend
 * call (aes256XtsEncryptUnits / DecryptUnits: sector lba + i is data unit lba + i), which gives the
 * bytes of one aes256XtsEncrypt per sector at a fraction of the cost. The write path hands `dev` the
 * backend's fresh ciphertext array; the read path decrypts what `dev` put in `out` back into `out`.
 */
export function encryptedPartition(
  dev: BlockBackend,
  dataKey: Uint8Array,
  backend: CryptoBackend,
): BlockBackend {
  checkDataKey(dataKey);
  const key = dataKey.slice(); // one array for the partition's life: backends cache work by it
  const sectors = dev.sectors;
  return {
    sectors,
    read(lba, out) {
      checkAccess('encrypted partition', sectors, lba, out);
      dev.read(lba, out);
      out.set(backend.aes256XtsDecryptUnits(key, lba, SECTOR_SIZE, out));
    },
    write(lba, data) {
      checkAccess('encrypted partition', sectors, lba, data);
      dev.write(lba, backend.aes256XtsEncryptUnits(key, lba, SECTOR_SIZE, data));
    },
  };
}

export interface WrapCommon {
  readonly backend: CryptoBackend;
  /** Ephemeral HPKE keys and salts. */
  readonly random: RandomSource;
  /** The partition the key is for (bound into the header). */
  readonly partition: string;
}

export type WrapOptions = WrapCommon &
  (
    | { readonly scheme: 'machine' /** Only the public half is needed. */; readonly machine: Clef }
    | {
        readonly scheme: 'two-level';
        /** The machine Key: its X25519 secret is half of the key-encryption key. */
        readonly machine: Key;
        readonly passphrase: string | Uint8Array;
        /** PBKDF2 iterations (default 600 000). */
        readonly iterations?: number;
      }
  );

export interface UnwrapOptions {
  readonly backend: CryptoBackend;
  /** Required by the two-level scheme; ignored by the machine scheme. */
  readonly passphrase?: string | Uint8Array;
  /** When given, a header made for another partition is refused (reason `partition`). */
  readonly partition?: string;
}

/** What a header says about itself, without unwrapping (e.g. to ask for a passphrase only when needed). */
export interface DiskKeyInfo {
  readonly scheme: DiskKeyScheme;
  readonly cipher: string;
  readonly partition: string;
  readonly machine: Uint8Array;
  readonly iterations?: number;
}

interface Parsed extends DiskKeyInfo {
  readonly aad: Uint8Array;
  readonly enc?: Uint8Array;
  readonly salt?: Uint8Array;
  readonly sealed: Uint8Array;
}

const passphraseBytes = (p: string | Uint8Array): Uint8Array =>
  typeof p === 'string' ? utf8(p.normalize('NFC')) : p.slice();

/** Key ‖ nonce of the two-level scheme; every intermediate secret is wiped. */
function twoLevelKek(
  backend: CryptoBackend,
  machineSecret: Uint8Array,
  passphrase: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  partition: string,
): { key: Uint8Array; nonce: Uint8Array } {
  const pw = backend.pbkdf2Sha256(passphrase, salt, iterations, 32);
  const ikm = new Uint8Array(64);
  ikm.set(machineSecret, 0);
  ikm.set(pw, 32);
  const prk = backend.hkdfExtract(salt, ikm);
  const info = encodeFields([INFO_TWO_LEVEL, utf8(partition)]);
  const okm = backend.hkdfExpand(prk, info, 44);
  const out = { key: okm.slice(0, 32), nonce: okm.slice(32, 44) };
  for (const b of [pw, ikm, prk, okm, passphrase]) b.fill(0);
  return out;
}

function checkPartitionName(partition: string): void {
  const n = typeof partition === 'string' ? utf8(partition).length : 0;
  if (n < 1 || n > MAX_PARTITION_NAME)
    throw new VmmError('CONFIG_INVALID', `a partition name is 1..${MAX_PARTITION_NAME} bytes`);
}

/** The header holding `dataKey` wrapped by `options.scheme` (see the file comment). */
export function wrapDataKey(dataKey: Uint8Array, options: WrapOptions): Uint8Array {
  checkDataKey(dataKey);
  const { backend, random, partition } = options;
  checkPartitionName(partition);
  const head = (machinePub: Uint8Array): Uint8Array[] => [
    utf8(DISK_KEY_MAGIC),
    Uint8Array.of(DISK_KEY_VERSION),
    utf8(options.scheme),
    utf8(DISK_CIPHER),
    utf8(partition),
    machinePub,
  ];
  if (options.scheme === 'machine') {
    const pub = options.machine?.seal;
    if (!(pub instanceof Uint8Array) || pub.length !== 32)
      throw new VmmError(
        'CONFIG_INVALID',
        'the machine scheme needs the machine Clef (its X25519 public key)',
      );
    // enc comes from the ephemeral secret; draw it first so it can be part of the aad.
    const ephemeral = random(32);
    const enc = backend.x25519PublicKey(ephemeral);
    const fields = [...head(pub), enc];
    const sealed = hpkeSeal(backend, pub, INFO_MACHINE, encodeFields(fields), dataKey, { secret: ephemeral });
    ephemeral.fill(0);
    return encodeFields([...fields, sealed.ciphertext]);
  }
  if (options.scheme !== 'two-level')
    throw new VmmError(
      'CONFIG_INVALID',
      `unknown key scheme ${String((options as { scheme: unknown }).scheme)}`,
    );
  const secret = options.machine?.open;
  if (!(secret instanceof Uint8Array) || secret.length !== 32)
    throw new VmmError('CONFIG_INVALID', 'the two-level scheme needs the machine Key (its X25519 secret)');
  const iterations = options.iterations ?? PBKDF2_DEFAULT_ITERATIONS;
  if (
    !(
      Number.isInteger(iterations) &&
      iterations >= PBKDF2_MIN_ITERATIONS &&
      iterations <= PBKDF2_MAX_ITERATIONS
    )
  )
    throw new VmmError(
      'CONFIG_INVALID',
      `PBKDF2 iterations must be ${PBKDF2_MIN_ITERATIONS}..${PBKDF2_MAX_ITERATIONS}`,
    );
  const pass = passphraseBytes(options.passphrase ?? '');
  if (pass.length === 0)
    throw new VmmError('CONFIG_INVALID', 'the two-level scheme needs a non-empty passphrase');
  const salt = random(SALT_BYTES);
  const fields = [...head(backend.x25519PublicKey(secret)), salt, u64(iterations)];
  const kek = twoLevelKek(backend, secret, pass, salt, iterations, partition);
  const sealed = backend.aeadSeal(kek.key, kek.nonce, encodeFields(fields), dataKey);
  kek.key.fill(0);
  return encodeFields([...fields, sealed]);
}

function parse(header: Uint8Array): Parsed {
  const r = new FieldReader(header, 'disk key header');
  if (fromUtf8(r.fixed(4, 'magic')) !== DISK_KEY_MAGIC) throw new Error('magic');
  if (r.fixed(1, 'version')[0] !== DISK_KEY_VERSION) throw new Error('version');
  const scheme = r.text(16, 'scheme');
  const cipher = r.text(32, 'cipher');
  if (cipher !== DISK_CIPHER) throw new Error('cipher');
  const partition = r.text(MAX_PARTITION_NAME, 'partition');
  if (partition.length === 0) throw new Error('partition');
  const machine = r.fixed(32, 'machine').slice();
  let rest: Pick<Parsed, 'enc' | 'salt' | 'iterations'>;
  if (scheme === 'machine') {
    rest = { enc: r.fixed(32, 'enc').slice() };
  } else if (scheme === 'two-level') {
    const salt = r.fixed(SALT_BYTES, 'salt').slice();
    const iterations = r.u64('iterations');
    if (iterations < PBKDF2_MIN_ITERATIONS || iterations > PBKDF2_MAX_ITERATIONS)
      throw new Error('iterations');
    rest = { salt, iterations };
  } else {
    throw new Error('scheme');
  }
  // The aad is every field before `sealed`, exactly as it lies in the header.
  const aadEnd = header.length - 4 - SEALED_BYTES;
  const sealed = r.fixed(SEALED_BYTES, 'sealed').slice();
  r.end();
  return { scheme, cipher, partition, machine, ...rest, aad: header.slice(0, aadEnd), sealed };
}

const refused = (reason: string, message: string): VmmError =>
  new VmmError('DISK_KEY_REFUSED', `disk key: ${message}`, { reason });

/** What `header` says about itself; DISK_KEY_REFUSED (reason `damaged`) when it is not a header. */
export function describeDataKey(header: Uint8Array): DiskKeyInfo {
  try {
    const { scheme, cipher, partition, machine, iterations } = parse(header);
    return { scheme, cipher, partition, machine, ...(iterations === undefined ? {} : { iterations }) };
  } catch {
    throw refused('damaged', 'the header is damaged or not a disk key header');
  }
}

/**
 * The 64-byte data key held by `header`, for the machine whose Key is `machineKey`. Never throws
 * anything but DISK_KEY_REFUSED for a header it cannot use (see the file comment for the reasons).
 */
export function unwrapDataKey(header: Uint8Array, machineKey: Key, options: UnwrapOptions): Uint8Array {
  const { backend } = options;
  let h: Parsed;
  try {
    h = parse(header);
  } catch {
    throw refused('damaged', 'the header is damaged or not a disk key header');
  }
  if (options.partition !== undefined && options.partition !== h.partition)
    throw refused('partition', `the key is for partition ${h.partition}, not ${options.partition}`);
  let mine: Uint8Array;
  try {
    mine = backend.x25519PublicKey(machineKey.open);
  } catch {
    throw refused('other-machine', 'the machine Key is malformed');
  }
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= mine[i]! ^ h.machine[i]!;
  if (diff !== 0) throw refused('other-machine', "the key was wrapped for another machine's key");
  if (h.scheme === 'two-level' && options.passphrase === undefined)
    throw refused('passphrase-required', 'this key needs a passphrase');
  let key: Uint8Array | null;
  try {
    if (h.scheme === 'machine') {
      key = hpkeOpen(backend, machineKey.open, h.enc!, INFO_MACHINE, h.aad, h.sealed);
    } else {
      const pass = passphraseBytes(options.passphrase!);
      const kek = twoLevelKek(backend, machineKey.open, pass, h.salt!, h.iterations!, h.partition);
      key = backend.aeadOpen(kek.key, kek.nonce, h.aad, h.sealed);
      kek.key.fill(0);
    }
  } catch {
    // CRYPTO_OPEN from HPKE, or CRYPTO_INPUT / CRYPTO_DH for inputs no wrap could have produced.
    key = null;
  }
  if (key === null || key.length !== DATA_KEY_BYTES || !halvesDiffer(key)) {
    key?.fill(0);
    throw refused(
      'refused',
      h.scheme === 'two-level' ? 'wrong passphrase or tampered header' : 'tampered header',
    );
  }
  return key;
}
