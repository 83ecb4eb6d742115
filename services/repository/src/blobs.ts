/**
 * The module files: content-addressed, one file `<dir>/<hex SHA-256>` per distinct content, the
 * digest computed with the protocol package's crypto backend. A file is written whole to a temp
 * file in the same folder, flushed, and renamed into place, so a file under a digest's name always
 * holds exactly those bytes (a crash leaves at most a `.tmp-*` file, removed at the next open).
 * The same content published twice is one file.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { type CryptoBackend, type RandomSource, toHex } from '@clefnet/protocol';
import { StoreError } from './store.js';

const DIGEST = /^[0-9a-f]{64}$/;

export interface BlobStore {
  /** The folder of the files. */
  readonly dir: string;
  /** Stores `bytes` (if no file holds them yet) and returns their digest (hex SHA-256). */
  put(bytes: Uint8Array): string;
  /** The bytes under `digest`, checked against it; STORE_CORRUPT if missing or altered. */
  get(digest: string): Uint8Array;
  /** The digests of the stored files, sorted. */
  list(): string[];
}

export function openBlobStore(dir: string, backend: CryptoBackend, random: RandomSource): BlobStore {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (f.startsWith('.tmp-')) rmSync(join(dir, f), { force: true });
  const digestOf = (bytes: Uint8Array) => toHex(backend.sha256(bytes));
  return {
    dir,
    put(bytes: Uint8Array): string {
      const digest = digestOf(bytes);
      const path = join(dir, digest);
      if (existsSync(path)) return digest;
      const tmp = join(dir, `.tmp-${toHex(random(8))}`);
      try {
        const fd = openSync(tmp, 'wx', 0o644);
        try {
          let off = 0;
          while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, path);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
      }
      return digest;
    },
    get(digest: string): Uint8Array {
      if (!DIGEST.test(digest)) throw new StoreError(`not a module digest: ${digest}`, { digest });
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(readFileSync(join(dir, digest)));
      } catch {
        throw new StoreError(`module file ${digest} is missing`, { digest });
      }
      if (digestOf(bytes) !== digest) throw new StoreError(`module file ${digest} was altered`, { digest });
      return bytes;
    },
    list(): string[] {
      return readdirSync(dir)
        .filter((f) => DIGEST.test(f))
        .sort();
    },
  };
}
