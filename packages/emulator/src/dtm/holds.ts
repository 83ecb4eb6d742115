/**
 * The hold queue as a person works it (DTM-9, claims 23 and 28): list the transfers held for
 * confirmation in a spool, approve or reject one. Works on a live DTM's spool or offline on the
 * spool area of a stopped machine's disk (`clefnet-holds`): an approval made offline is a record
 * turned `ready`, which the DTM delivers when it starts again; a rejection deletes the record.
 */
import { VmmError } from '../vmm/errors.js';
import { decodeRecord, encodeRecord, type TransferRecord } from './record.js';
import type { Spool } from './spool.js';

export interface HeldTransfer {
  readonly id: number;
  /** The DTM that owns it (its `id`). */
  readonly owner: number;
  readonly from: string;
  readonly to: readonly string[];
  readonly frames: number;
  readonly bytes: number;
  readonly since: number;
  readonly reason: string;
}

/** The held transfers in `spool`, oldest first; unreadable records are skipped. */
export function listHeld(spool: Spool): HeldTransfer[] {
  const out: HeldTransfer[] = [];
  for (const id of spool.ids()) {
    const r = decodeRecord(spool.get(id)!);
    if (typeof r === 'string' || r.state !== 'held') continue;
    out.push({
      id,
      owner: r.owner,
      from: r.from,
      to: r.targets,
      frames: r.frames.length,
      bytes: r.frames.reduce((n, f) => n + f.length, 0),
      since: r.decided,
      reason: r.reason,
    });
  }
  return out.sort((a, b) => a.since - b.since || a.id - b.id);
}

function held(spool: Spool, id: number): TransferRecord {
  const bytes = spool.has(id) ? spool.get(id) : undefined;
  const r = bytes === undefined ? undefined : decodeRecord(bytes);
  if (r === undefined || typeof r === 'string' || r.state !== 'held') {
    throw new VmmError('DTM_BAD_HOLD', `no held transfer ${id}`, { id });
  }
  return r;
}

/** Approves a held transfer in the spool: its DTM delivers it at its next turn after it starts. */
export function approveHeld(spool: Spool, id: number): void {
  const r = held(spool, id);
  spool.put(id, encodeRecord({ ...r, state: 'ready', reason: '' }));
}

/** Rejects a held transfer: deleted, never delivered. */
export function rejectHeld(spool: Spool, id: number): void {
  held(spool, id);
  spool.delete(id);
}
