/**
 * CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib and PNG compute it:
 * crc32("123456789") = 0xcbf43926. It detects damage (CLFX images, the spool, the disk layout); it
 * authenticates nothing. Written here once so the emulator needs no checksum dependency.
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The running value a CRC starts from. */
export const CRC32_START = 0xffffffff;

/** Feeds bytes [from, to) of `b` into a running CRC (start with CRC32_START, end with crc32Finish). */
export function crc32Update(c: number, b: Uint8Array, from = 0, to = b.length): number {
  for (let i = from; i < to; i++) c = TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return c;
}

export function crc32Finish(c: number): number {
  return (c ^ 0xffffffff) >>> 0;
}

export function crc32(bytes: Uint8Array): number {
  return crc32Finish(crc32Update(CRC32_START, bytes));
}
