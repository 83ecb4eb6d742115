/**
 * Host errors of the VM manager (STYLE: one error base class with typed codes). A guest's mistake
 * is never one of these: it is the fault the bare machine would raise, delivered to the guest.
 */
import { ClefnetError, type ErrorCode } from '@clefnet/protocol';

export type VmmErrorCode = Extract<
  ErrorCode,
  | 'CONFIG_INVALID'
  | 'BAD_STATE'
  | 'LIMIT_EXCEEDED'
  | 'VMM_OUT_OF_MEMORY'
  | 'VMM_HOLE_CONFLICT'
  | 'VMM_BAD_VE'
  | 'SPOOL_FULL'
  | 'SPOOL_CORRUPT'
  | 'DTM_BAD_HOLD'
  | 'DISK_KEY_REFUSED'
  | 'DISK_CORRUPT'
>;

export class VmmError extends ClefnetError {
  override readonly code: VmmErrorCode;

  constructor(code: VmmErrorCode, message: string, meta: Record<string, string | number | boolean> = {}) {
    super(code, message, meta);
    this.name = 'VmmError';
    this.code = code;
  }
}
