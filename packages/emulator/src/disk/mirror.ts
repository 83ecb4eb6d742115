/**
 * Transparent disk mirroring, RAID-1 (DEV-12, TB-9): two devices of the same size hold the same
 * sectors. Every write goes to both; a read is served by the primary and falls back to the
 * secondary when the primary throws. The guest sees one disk and never learns of a fault.
 *
 * A member whose write throws has missed data, so it is marked failed and left out of every later
 * read and write (the mirror runs degraded on the other one) until the host replaces or resyncs it
 * and makes a new mirror. A failed read does not mark the primary failed (one bad sector does not
 * make a bad disk). Only when no member can serve an access does it throw: the last member's error.
 * Every fault is reported through `onFault`; accesses outside the disk are the caller's RangeError
 * before either member is touched.
 */
import type { BlockBackend } from '../devices/disk.js';
import { VmmError } from '../vmm/errors.js';
import { checkAccess } from './block.js';

export type MirrorMember = 'primary' | 'secondary';

export interface MirrorFault {
  readonly member: MirrorMember;
  readonly op: 'read' | 'write';
  readonly lba: number;
  readonly count: number;
  readonly error: unknown;
  /** True when the member is now left out (a failed write). */
  readonly failed: boolean;
}

export interface MirroredBackend extends BlockBackend {
  /** Members marked failed by a write error. */
  failed(): readonly MirrorMember[];
}

export function mirrored(
  primary: BlockBackend,
  secondary: BlockBackend,
  onFault: (fault: MirrorFault) => void = () => {},
): MirroredBackend {
  if (primary === secondary) throw new VmmError('CONFIG_INVALID', 'a mirror needs two different devices');
  if (primary.sectors !== secondary.sectors)
    throw new VmmError(
      'CONFIG_INVALID',
      `mirror members differ in size: ${primary.sectors} and ${secondary.sectors} sectors`,
      {
        primary: primary.sectors,
        secondary: secondary.sectors,
      },
    );
  const sectors = primary.sectors;
  const members: readonly [MirrorMember, BlockBackend][] = [
    ['primary', primary],
    ['secondary', secondary],
  ];
  const down = new Set<MirrorMember>();
  const live = () => members.filter(([m]) => !down.has(m));
  return {
    sectors,
    read(lba, out) {
      const count = checkAccess('mirror', sectors, lba, out);
      const serving = live();
      for (let i = 0; i < serving.length; i++) {
        const [member, dev] = serving[i]!;
        try {
          dev.read(lba, out);
          return;
        } catch (error) {
          onFault({ member, op: 'read', lba, count, error, failed: false });
          if (i === serving.length - 1) throw error;
        }
      }
      throw new VmmError('BAD_STATE', 'both mirror members have failed');
    },
    write(lba, data) {
      const count = checkAccess('mirror', sectors, lba, data);
      const serving = live();
      if (serving.length === 0) throw new VmmError('BAD_STATE', 'both mirror members have failed');
      let landed = 0;
      let last: unknown;
      for (const [member, dev] of serving) {
        try {
          dev.write(lba, data);
          landed++;
        } catch (error) {
          down.add(member);
          last = error;
          onFault({ member, op: 'write', lba, count, error, failed: true });
        }
      }
      if (landed === 0) throw last;
    },
    failed: () => members.filter(([m]) => down.has(m)).map(([m]) => m),
  };
}
