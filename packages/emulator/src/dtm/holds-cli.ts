/**
 * `clefnet-holds`: the hold queue of a stopped machine's disk, for a person (DTM-9).
 *
 *   clefnet-holds <disk image> list
 *   clefnet-holds <disk image> approve <id>
 *   clefnet-holds <disk image> reject <id>
 *
 * The spool is the file `spool` of the real partition (Fig. 5, 104e), or, with `--firewall`, the
 * firewall partition (106a), or `--region <start>+<count>` sectors of the image.
 */

import { ClefnetError } from '@clefnet/protocol';
import type { BlockBackend } from '../devices/disk.js';
import { blockRegion } from '../disk/block.js';
import { partitionOf, readLayout } from '../disk/layout.js';
import { openRealFs, REAL_FILES } from '../disk/realfs.js';
import { approveHeld, listHeld, rejectHeld } from './holds.js';
import { openBlockSpool } from './spool.js';

export interface HoldsIo {
  openDisk(path: string): BlockBackend;
  stdout(text: string): void;
  stderr(text: string): void;
}

const USAGE =
  'usage: clefnet-holds <disk image> [--firewall | --region <start>+<count>] list | approve <id> | reject <id>\n';

/** Runs the command; the exit code (0 done, 1 refused, 2 usage). */
export function runHoldsCli(argv: readonly string[], io: HoldsIo): number {
  const args = [...argv];
  const image = args.shift();
  let where: 'spool' | 'firewall' | { start: number; count: number } = 'spool';
  if (args[0] === '--firewall') {
    args.shift();
    where = 'firewall';
  } else if (args[0] === '--region') {
    args.shift();
    const m = /^(\d+)\+(\d+)$/.exec(args.shift() ?? '');
    if (m === null) {
      io.stderr(USAGE);
      return 2;
    }
    where = { start: Number(m[1]), count: Number(m[2]) };
  }
  const [verb, idText, ...rest] = args;
  const id = idText === undefined ? Number.NaN : Number(idText);
  if (
    image === undefined ||
    rest.length > 0 ||
    !(verb === 'list'
      ? idText === undefined
      : (verb === 'approve' || verb === 'reject') && Number.isSafeInteger(id))
  ) {
    io.stderr(USAGE);
    return 2;
  }
  try {
    const disk = io.openDisk(image);
    let region: BlockBackend;
    if (typeof where === 'object') region = blockRegion(disk, where.start, where.count, 'spool region');
    else {
      const layout = readLayout(disk);
      const kind = where === 'firewall' ? 'firewall' : 'real';
      const part = layout.partitions.find((p) => p.kind === kind);
      if (part === undefined) throw new Error(`the disk has no ${kind} partition`);
      const dev = partitionOf(disk, layout, part.name);
      region = where === 'firewall' ? dev : openRealFs(dev).region(REAL_FILES.spool);
    }
    const spool = openBlockSpool(region, { format: 'never' });
    if (verb === 'list') {
      const held = listHeld(spool);
      if (held.length === 0) io.stdout('no transfer is held\n');
      for (const h of held) {
        io.stdout(
          `${h.id}\t${new Date(h.since).toISOString()}\t${h.from} -> ${h.to.join(',')}\t${h.frames} frame(s), ${h.bytes} bytes\t${h.reason}\n`,
        );
      }
    } else if (verb === 'approve') {
      approveHeld(spool, id);
      io.stdout(`approved ${id}: delivered when its DTM runs again\n`);
    } else {
      rejectHeld(spool, id);
      io.stdout(`rejected ${id}\n`);
    }
    return 0;
  } catch (e) {
    io.stderr(`clefnet-holds: ${e instanceof ClefnetError ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
}
