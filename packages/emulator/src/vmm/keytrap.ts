/**
 * The key trap's real-environment side (KEY-6..12, claims 40-41, TB-11, TB-12): when a VE calls
 * the predetermined key address (ve.ts traps the call), the VM manager does not hand out the
 * machine's key (KEY-10); it asks key server KServ1 for a limited-use VE triple with a message
 * secured by Key-M (KEY-7, the protocol package's `AncMachine.requestVeKey`), over a transport it
 * is given (so a test can put a key-server party object behind it, and a service a WebSocket). The
 * answer is installed in `VeKeys` (the VE's key entry, KEY-5) and handed to the calling VE only, as
 * if the code at the called address had returned it (KEY-8).
 *
 * Policy `reuse` (default): a later call from the same VE gets the key it already has, whichever
 * process calls (ATK-18: the trap isolates VEs, not applications). `fresh`: every call asks for a
 * new key, and the new one invalidates the old (KEY-9), so a second caller silently breaks the
 * first caller's sessions (ATK-18 step 2's other branch). `rotate(ve)` forces a new key at the next
 * call (KEY-9: the VE's key pair changes without its applications knowing).
 */
import {
  AncMachine,
  type CryptoBackend,
  type EphemeralPool,
  type KnownKeyServer,
  type Name,
  type Outbound,
  type Profile,
  type ProfileName,
  type ProtocolEvent,
  type RandomSource,
} from '@clefnet/protocol';
import type { MachineTriple } from './machinekey.js';
import { KEY_STATUS, type KeyAnswer } from './ve.js';
import type { VeKeyEntry, VeKeys } from './vekeys.js';

/** The default key address: guest-physical, on the empty bus just below a 64 KiB boot ROM. */
export const KEY_ADDRESS = 0xfffe0000;

export interface KeyServiceOptions {
  readonly machine: MachineTriple;
  /** KServ1's access pair, with the `mint` scope. */
  readonly keyServer: KnownKeyServer;
  /** Sends a frame of the exchange towards KServ1; its answers come back through `receive`. */
  readonly transport: (frame: Outbound) => void;
  readonly keys: VeKeys;
  readonly backend: CryptoBackend;
  readonly random: RandomSource;
  /** Ephemeral keys for the party's sealed requests (PartyOptions.ephemeral); default `random`. */
  readonly ephemeral?: EphemeralPool;
  readonly clock: () => number;
  readonly profile?: Profile | ProfileName;
  readonly policy?: 'reuse' | 'fresh';
  /** The protocol party's events (TB-2): requests, answers, refusals. */
  readonly onEvent?: (e: ProtocolEvent) => void;
}

interface Waiting {
  readonly name: Name;
  /** The version the VE had when it called (a new one answers it). */
  readonly had: number;
  failed?: boolean;
}

export class KeyService {
  /** The real environment's protocol party; it holds Key-M (read from NVRAM at boot). */
  readonly party: AncMachine;
  private readonly opts: KeyServiceOptions;
  private readonly waiting = new Map<string, Waiting>();
  private readonly stale = new Set<string>();
  /** Key requests sent to the key server. */
  requests = 0;

  constructor(opts: KeyServiceOptions) {
    this.opts = opts;
    this.party = new AncMachine({
      triple: { name: opts.machine.name, clef: opts.machine.clef, key: opts.machine.key },
      backend: opts.backend,
      random: opts.random,
      ...(opts.ephemeral === undefined ? {} : { ephemeral: opts.ephemeral }),
      clock: opts.clock,
      keyServers: [opts.keyServer],
      ...(opts.profile === undefined ? {} : { profile: opts.profile }),
    });
  }

  /**
   * The hook of VE `ve` whose key is Name-VE `name`: the first call sends the request; later polls
   * return undefined until the answer has been received.
   */
  call(ve: string, name: Name): KeyAnswer | undefined {
    const w = this.waiting.get(ve);
    const have = this.opts.keys.get(ve);
    if (w === undefined) {
      const reuse = (this.opts.policy ?? 'reuse') === 'reuse';
      if (have !== undefined && reuse && !this.stale.has(ve)) return answer(have);
      this.stale.delete(ve);
      this.waiting.set(ve, { name, had: have?.version ?? 0 });
      this.requests++;
      this.handle(this.party.requestVeKey(name));
    } else this.handle(this.party.expire()); // a request with no answer fails after its timeout
    const now = this.waiting.get(ve);
    if (now === undefined) return undefined;
    if (now.failed === true) {
      this.waiting.delete(ve);
      return { status: KEY_STATUS.REFUSED };
    }
    const got = this.opts.keys.get(ve);
    if (got !== undefined && got.version > now.had) {
      this.waiting.delete(ve);
      return answer(got);
    }
    return undefined;
  }

  /** A frame from the key server (the transport's way back). */
  receive(bytes: Uint8Array): void {
    this.handle(this.party.receive(bytes));
  }

  /** KEY-9: `ve` gets a new key at its next call; the current one stays valid until then. */
  rotate(ve: string): void {
    this.stale.add(ve);
  }

  private handle(o: ReturnType<AncMachine['receive']>): void {
    for (const e of o.events) this.opts.onEvent?.(e);
    for (const f of o.send) this.opts.transport(f);
    for (const d of o.deliver) {
      if (d.kind === 've-key') {
        for (const [ve, w] of this.waiting) {
          if (w.name === d.ve)
            this.opts.keys.install(ve, d.triple.name, d.triple.clef, d.triple.key, this.opts.clock());
        }
      } else if (d.kind === 'request-failed' && d.step === 'VEKEY-REQ') {
        // An error answer, a refused answer or a timeout: the VEs waiting for that Name fail.
        for (const w of this.waiting.values()) if (w.name === d.subject) w.failed = true;
      }
    }
  }
}

function answer(e: VeKeyEntry): KeyAnswer {
  const key = new Uint8Array(64);
  key.set(e.key.sign, 0);
  key.set(e.key.open, 32);
  const clef = new Uint8Array(64);
  clef.set(e.clef.sign, 0);
  clef.set(e.clef.seal, 32);
  return { status: KEY_STATUS.OK, key, clef, name: e.name, version: e.version };
}
