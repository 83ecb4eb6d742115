/**
 * The auxiliary disk 60 of the real environment (BOOT-16, Fig. 5): its partition table, the real
 * partition's file system, transparent partition encryption (CRYPT-1..10, TB-10) and mirroring
 * (DEV-12). Every piece is a {@link BlockBackend} over another, so they stack: a VE's disk is
 * `encryptedPartition(mirrored(partitionOf(a, ...), partitionOf(b, ...)), key, backend)`.
 */
export type { DiskStructure } from './block.js';
export { blockRegion } from './block.js';
export type { DiskKeyInfo, DiskKeyScheme, UnwrapOptions, WrapCommon, WrapOptions } from './crypt.js';
export {
  DATA_KEY_BYTES,
  DISK_CIPHER,
  DISK_KEY_MAGIC,
  DISK_KEY_VERSION,
  describeDataKey,
  encryptedPartition,
  generateDataKey,
  PBKDF2_DEFAULT_ITERATIONS,
  PBKDF2_MAX_ITERATIONS,
  PBKDF2_MIN_ITERATIONS,
  unwrapDataKey,
  wrapDataKey,
} from './crypt.js';
export type { DiskLayout, Partition, PartitionKind } from './layout.js';
export {
  decodeLayout,
  encodeLayout,
  findPartition,
  formatDisk,
  LAYOUT_MAGIC,
  LAYOUT_MAX_PARTITIONS,
  LAYOUT_VERSION,
  partitionOf,
  readLayout,
} from './layout.js';
export type { LiteralOptions } from './literal.js';
export { LITERAL_INFO, literalPartition } from './literal.js';
export type { MirroredBackend, MirrorFault, MirrorMember } from './mirror.js';
export { mirrored } from './mirror.js';
export type { RealFs, RealFsFile } from './realfs.js';
export {
  formatRealFs,
  openRealFs,
  REAL_FILES,
  REALFS_DATA_START,
  REALFS_MAX_FILES,
  realFsNvramBackend,
  taskImage,
  veFiles,
} from './realfs.js';
