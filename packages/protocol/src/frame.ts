/**
 * Transport frames (TB-15): what one WebSocket binary message carries. A frame wraps an envelope
 * with routing data (addressee, sender hint, correlation id) that sits outside the envelope and is
 * never trusted for a security decision: a proxy may rewrite any of it.
 *
 * Frame = TB-14 record ("CLEFNET/1", kind, to, from, corr, body), kinds:
 * - SEALED: body is a sealed envelope `< Name-S ‖ <payload>Key-S >Clef-R`;
 * - SIGNED: body is `Name-S ‖ <payload>Key-S` in clear (signed negative answers, hardened);
 * - ERROR:  body is an unsigned error payload ("ERR", code, detail, subject) (patent, TB-15).
 */
import { encodeFields, FieldReader, utf8, utf8Shared } from './codec.js';
import { ProtocolError } from './errors.js';
import { LIMITS } from './limits.js';
import { type Name, parseName } from './names.js';

export const WIRE_VERSION = 'CLEFNET/1';
export const FRAME_KINDS = ['SEALED', 'SIGNED', 'ERROR'] as const;
export type FrameKind = (typeof FRAME_KINDS)[number];

export interface Frame {
  readonly kind: FrameKind;
  /** Addressee Name, or '' (routing only). */
  readonly to: Name | '';
  /** Sender hint, or '' (routing only; the authenticated sender is inside the envelope). */
  readonly from: Name | '';
  /** Correlation id chosen by the requester (routing only). */
  readonly corr: string;
  readonly body: Uint8Array;
}

export function encodeFrame(f: Frame): Uint8Array {
  if (utf8(f.corr).length > LIMITS.CORRELATION_MAX_BYTES) {
    throw new ProtocolError('ENCODING_TOO_LARGE', `corr over ${LIMITS.CORRELATION_MAX_BYTES} bytes`, {
      field: 'corr',
    });
  }
  const out = encodeFields([
    utf8Shared(WIRE_VERSION),
    utf8Shared(f.kind),
    utf8Shared(f.to),
    utf8Shared(f.from),
    utf8(f.corr),
    f.body,
  ]);
  if (out.length > LIMITS.FRAME_MAX_BYTES) {
    throw new ProtocolError(
      'ENCODING_TOO_LARGE',
      `frame of ${out.length} bytes, limit ${LIMITS.FRAME_MAX_BYTES}`,
    );
  }
  return out;
}

export function decodeFrame(bytes: Uint8Array): Frame {
  if (bytes.length > LIMITS.FRAME_MAX_BYTES) {
    throw new ProtocolError(
      'ENCODING_TOO_LARGE',
      `frame of ${bytes.length} bytes, limit ${LIMITS.FRAME_MAX_BYTES}`,
      {
        length: bytes.length,
      },
    );
  }
  const r = new FieldReader(bytes, 'frame');
  const version = r.text(16, 'version');
  if (version !== WIRE_VERSION) {
    throw new ProtocolError(
      'FRAME_VERSION',
      `wire version ${JSON.stringify(version)}, expected ${WIRE_VERSION}`,
    );
  }
  const kind = r.text(8, 'kind');
  if (!(FRAME_KINDS as readonly string[]).includes(kind)) {
    throw new ProtocolError('FRAME_KIND', `unknown frame kind ${JSON.stringify(kind)}`);
  }
  const to = optionalName(r.text(LIMITS.NAME_MAX_BYTES, 'to'));
  const from = optionalName(r.text(LIMITS.NAME_MAX_BYTES, 'from'));
  const corr = r.text(LIMITS.CORRELATION_MAX_BYTES, 'corr');
  const body = r.bytesField(LIMITS.FRAME_MAX_BYTES, 'body');
  r.end();
  return { kind: kind as FrameKind, to, from, corr, body };
}

function optionalName(text: string): Name | '' {
  return text === '' ? '' : parseName(text);
}
