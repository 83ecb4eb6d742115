/**
 * Host errors of the devices (STYLE: one error base class with typed codes). A device throws only
 * for host misuse — bad constructor options, a bad argument to a host method, snapshot bytes that
 * are not a snapshot of this device. Guest mistakes are never exceptions: they are status codes in
 * the device's registers.
 */
import { ClefnetError, type ErrorCode } from '@clefnet/protocol';

/** The registry codes a device uses (all defined in `packages/protocol/src/errors.ts`). */
export type DeviceErrorCode = Extract<
  ErrorCode,
  'CONFIG_INVALID' | 'ENCODING_TRUNCATED' | 'ENCODING_TRAILING' | 'ENCODING_BAD_VALUE' | 'BAD_STATE'
>;

export class DeviceError extends ClefnetError {
  override readonly code: DeviceErrorCode;

  constructor(code: DeviceErrorCode, device: string, message: string) {
    super(code, `${device}: ${message}`, { device });
    this.name = 'DeviceError';
    this.code = code;
  }
}

/** Throws CONFIG_INVALID unless `value` is an integer in [min, max]; returns it. */
export function intOption(device: string, name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new DeviceError(
      'CONFIG_INVALID',
      device,
      `${name} must be an integer in ${min}..${max}, got ${value}`,
    );
  }
  return value;
}

/** Interrupt lines are the 16 inputs of the interrupt controller (pic.ts). */
export const IRQ_LINES = 16;

/** The callback a device raises its interrupt line through; the no-op default leaves it to polling. */
export type IrqCallback = (line: number) => void;

export const noIrq: IrqCallback = () => {};
