/**
 * A service's event stream (TB-2): every protocol event of its party, every frame in and out,
 * every connection and every host error is one {@link ServiceEvent}, written as one structured
 * pino line and handed to in-process subscribers (tests, a future viewer). Events carry sizes,
 * Names, codes and routing data, never key material or message contents.
 */
import {
  ClefnetError,
  type ErrorCode,
  type FrameKind,
  type Name,
  type ProtocolEvent,
  type Step,
} from '@clefnet/protocol';
import type { Logger } from 'pino';

export type ServiceEvent =
  /** One event of the service's party, as it produced it. */
  | { readonly type: 'protocol'; readonly at: number; readonly event: ProtocolEvent }
  /**
   * One WebSocket binary message. Routing fields are read with the protocol's frame decoder; an
   * inbound message that does not decode has `code` instead (the party refuses it the same way).
   */
  | {
      readonly type: 'frame';
      readonly at: number;
      readonly dir: 'in' | 'out';
      readonly conn: string;
      readonly bytes: number;
      readonly kind?: FrameKind;
      readonly to?: Name | '';
      readonly corr?: string;
      readonly step?: Step;
      readonly code?: ErrorCode;
    }
  | {
      readonly type: 'connection';
      readonly at: number;
      readonly conn: string;
      readonly state: 'open' | 'closed';
      /** `inbound`: a peer connected to /ws; `outbound`: this service dialled a directory entry. */
      readonly direction: 'inbound' | 'outbound';
      readonly remote?: string;
      readonly peer?: Name;
      readonly code?: number;
      readonly reason?: string;
    }
  /**
   * A frame the party addressed to a Name with no open route and no directory entry, or one
   * queued on an outbound connection that closed before it opened: dropped.
   */
  | {
      readonly type: 'undeliverable';
      readonly at: number;
      readonly to: Name | '';
      readonly step?: Step;
      readonly conn?: string;
    }
  /**
   * Something the service's own machinery did besides the protocol (an ANC's traps, ring changes,
   * DTM transfers, console lines, module loads): `event.kind` names it. Logged at debug level
   * (there can be thousands a second); subscribers see every one.
   */
  | { readonly type: 'machine'; readonly at: number; readonly event: MachineEventData }
  /** Something failed in the host, not in the protocol (a store error, a failed dial): logged, survived. */
  | {
      readonly type: 'host-error';
      readonly at: number;
      readonly where: string;
      readonly code?: ErrorCode;
      readonly message: string;
      readonly conn?: string;
    };

/** One machine event: a `kind` and plain fields (numbers, strings, booleans, arrays of them). */
export interface MachineEventData {
  readonly kind: string;
  readonly [field: string]: unknown;
}

export type ServiceEventListener = (e: ServiceEvent) => void;

export interface EventHub {
  emit(e: ServiceEvent): void;
  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: ServiceEventListener): () => void;
}

export function createEventHub(logger: Logger): EventHub {
  const listeners = new Set<ServiceEventListener>();
  return {
    emit(e) {
      const level =
        e.type === 'host-error'
          ? 'error'
          : e.type === 'undeliverable'
            ? 'warn'
            : e.type === 'machine'
              ? 'debug'
              : 'info';
      logger[level](e, e.type);
      for (const l of listeners) {
        try {
          l(e);
        } catch (err) {
          // A subscriber's bug must not stop the service or the other subscribers.
          logger.error({ err }, 'event listener threw');
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** The `host-error` event for an exception the host caught (typed code when it is a ClefnetError). */
export function hostErrorEvent(at: number, where: string, e: unknown, conn?: string): ServiceEvent {
  return {
    type: 'host-error',
    at,
    where,
    message: e instanceof Error ? e.message : String(e),
    ...(e instanceof ClefnetError ? { code: e.code } : {}),
    ...(conn === undefined ? {} : { conn }),
  };
}
