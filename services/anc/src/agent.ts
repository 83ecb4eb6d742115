/**
 * The ANC's protocol agent (steps 8 and 9, PROTO-21..24): the real-environment end, on the inside
 * DTM, of every protocol transaction the firewall lets in. For each node VE it runs that VE's
 * `AncVe` party with the VE's limited-use triple {Name-ANC, Clef-ANC, Key-ANC}, which KServ1 issued
 * to the machine when the guest called the key address (KEY-6..8; the agent follows the VE's key
 * entry through rotations, KEY-9). The key is applied here, outside the VE, as in the models of
 * claims 36-38 where the DTM or the VMM applies a VE's key (PROTO-24: "kept outside the VE").
 *
 * - A transaction from the firewall is one protocol frame: the party of its addressee (a VE's Name,
 *   or a SecApp's) opens it. Step 9's query and every other message the parties send go to the
 *   network straight from the real environment (`toNetwork`), as the key trap's request does: only
 *   real-environment code puts frames on the service's links, so nothing a guest transmits is ever
 *   taken for a protocol message (it leaves as traffic).
 * - A verified program is delivered through the DTM to the VE's NIC as a transaction (the guest's
 *   loader runs it); the hand-over (PROTO-23) gives the VE's application its SecApp party here.
 * - A datagram (0x88B6) from a node VE is its application's report: sent to the ASD over the
 *   KServ2 channel with the SecApp triple (PROTO-25, TB-17).
 *
 * Everything refused is dropped with an `agent` event saying why; nothing a guest or the network
 * sends can throw out of here.
 */
import {
  ETHERNET_HEADER,
  ETHERTYPE_DATAGRAM,
  ETHERTYPE_TRANSACTION,
  formatMac,
  type NicLink,
  sameMac,
  type VeKeyEntry,
} from '@clefnet/emulator';
import {
  AncVe,
  ClefnetError,
  type CryptoBackend,
  decodeFrame,
  type EphemeralPool,
  type KnownKeyServer,
  LIMITS,
  type Name,
  type Outbound,
  type Outcome,
  type Party,
  type ProfileName,
  type ProtocolEvent,
  type RandomSource,
  SecApp,
} from '@clefnet/protocol';
import type { MachineEventData } from '@clefnet/service-host';
import { AGENT_MAC, fragment, Reassembler } from './wire.js';

/** A node VE as the agent knows it. */
export interface AgentNode {
  /** The VE's name in the VM manager (its key entry's `ve`). */
  readonly ve: string;
  /** Its NIC's address on the inside DTM. */
  readonly mac: Uint8Array;
  /** Authorised senders of programs (closed model, step 8). */
  readonly senders: readonly Name[];
}

export interface InstalledModule {
  readonly ve: string;
  readonly sender: Name;
  readonly digest: string;
  readonly bytes: number;
  readonly at: number;
}

export interface AgentOptions {
  readonly backend: CryptoBackend;
  readonly random: RandomSource;
  /** Ephemeral keys for the parties' sealed messages (PartyOptions.ephemeral). */
  readonly ephemeral?: EphemeralPool;
  readonly clock: () => number;
  readonly profile: ProfileName;
  /** KServ1 (scope `clef`), for step 9; the others the node VEs are provisioned with (KEY-12). */
  readonly keyServers: readonly KnownKeyServer[];
  /** Where applications' reports go (the ASD's Name); without it reports are dropped. */
  readonly asd?: Name;
  /** A request without an answer after this long fails (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** The firewall VE's inside address: the only source of protocol transactions. */
  readonly firewall: Uint8Array;
  /** A protocol frame for the Name `to`, out of the real environment. */
  readonly toNetwork: (o: Outbound) => void;
  readonly onProtocolEvent: (e: ProtocolEvent) => void;
  readonly onEvent: (e: MachineEventData) => void;
}

export interface AgentStats {
  readonly transactionsIn: number;
  readonly transactionsOut: number;
  readonly modulesDelivered: number;
  readonly reports: number;
  /** Reports the ASD answered through KServ2. */
  readonly reportsAnswered: number;
  /** Reports refused or unanswered (a revoked application: KServ2 or the ASD says no). */
  readonly reportsFailed: number;
  readonly dropped: number;
}

interface NodeState {
  readonly node: AgentNode;
  party: AncVe | undefined;
  app: SecApp | undefined;
}

/** How long an unfinished transaction may take. */
const ASSEMBLY_MS = 30_000;
const HISTORY = 64;

export class Agent implements NicLink {
  readonly mac = new Uint8Array(AGENT_MAC);
  readonly queueCapacity = 4096;
  private readonly inbox: Uint8Array[] = [];
  private readonly outbox: Uint8Array[] = [];
  private readonly listeners = new Set<(frame: Uint8Array) => void>();
  private readonly nodes = new Map<string, NodeState>();
  /** Name-VE or Name-SecApp -> the party that takes frames addressed to it. */
  private readonly parties = new Map<Name, { party: Party; node: NodeState }>();
  private readonly assembler: Reassembler;
  private readonly history: InstalledModule[] = [];
  private txid = 1;
  private lastExpire = 0;
  private readonly counts = {
    transactionsIn: 0,
    transactionsOut: 0,
    modulesDelivered: 0,
    reports: 0,
    reportsAnswered: 0,
    reportsFailed: 0,
    dropped: 0,
  };

  constructor(private readonly opts: AgentOptions) {
    this.assembler = new Reassembler(LIMITS.FRAME_MAX_BYTES, opts.clock);
  }

  get queued(): number {
    return this.inbox.length;
  }

  /** Frames waiting to be processed or sent. */
  get busy(): boolean {
    return this.inbox.length > 0 || this.outbox.length > 0;
  }

  on(_event: 'transmit', listener: (frame: Uint8Array) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The DTM delivers a frame (copied: the caller's buffer is reused). */
  receive(frame: Uint8Array): boolean {
    if (this.inbox.length >= this.queueCapacity) return false;
    this.inbox.push(frame.slice());
    return true;
  }

  addNode(node: AgentNode): void {
    this.nodes.set(node.ve, { node, party: undefined, app: undefined });
  }

  /** A VE's key entry was installed (issued or rotated): its party holds that triple from now. */
  keyInstalled(e: VeKeyEntry): void {
    const n = this.nodes.get(e.ve);
    if (n === undefined) return;
    const triple = { name: e.name as Name, clef: e.clef, key: e.key };
    if (n.party !== undefined && n.party.name === triple.name) {
      n.party.rekey(triple);
    } else {
      if (n.party !== undefined) this.parties.delete(n.party.name);
      n.party = new AncVe({
        triple,
        backend: this.opts.backend,
        random: this.opts.random,
        ...(this.opts.ephemeral === undefined ? {} : { ephemeral: this.opts.ephemeral }),
        clock: this.opts.clock,
        profile: this.opts.profile,
        keyServers: this.opts.keyServers,
        senders: n.node.senders,
        ...(this.opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: this.opts.requestTimeoutMs }),
      });
      this.parties.set(triple.name, { party: n.party, node: n });
    }
    this.opts.onEvent({ kind: 'agent', action: 'key', ve: e.ve, name: e.name, version: e.version });
  }

  /** Modules delivered, oldest first (the last {@link HISTORY}). */
  installed(ve?: string): InstalledModule[] {
    return this.history.filter((m) => ve === undefined || m.ve === ve);
  }

  /** The Name-VE and the application Name of a node VE, as far as known. */
  names(ve: string): { readonly name?: Name; readonly app?: Name } {
    const n = this.nodes.get(ve);
    return {
      ...(n?.party === undefined ? {} : { name: n.party.name }),
      ...(n?.app === undefined ? {} : { app: n.app.name }),
    };
  }

  stats(): AgentStats {
    return { ...this.counts };
  }

  /** The agent's turn (after every VE slice): what arrived, then what is to be sent. */
  service(): void {
    const now = this.opts.clock();
    if (now - this.lastExpire >= 1000) {
      this.lastExpire = now;
      this.expire(now);
    }
    while (this.inbox.length > 0) this.handleFrame(this.inbox.shift()!);
    while (this.outbox.length > 0) {
      const f = this.outbox.shift()!;
      for (const l of this.listeners) l(f);
    }
  }

  private expire(now: number): void {
    const n = this.assembler.expire(now - ASSEMBLY_MS);
    if (n > 0) this.drop('', `${n} unfinished transaction(s) expired`);
    for (const { party, node } of new Set(this.parties.values())) this.handle(party.expire(), node);
  }

  private handleFrame(frame: Uint8Array): void {
    if (frame.length < ETHERNET_HEADER) {
      this.drop('', 'runt frame');
      return;
    }
    const src = frame.subarray(6, 12);
    const type = (frame[12]! << 8) | frame[13]!;
    const payload = frame.subarray(ETHERNET_HEADER);
    if (type === ETHERTYPE_TRANSACTION) {
      // Protocol frames come from the network through the firewall only: a node VE (its module is
      // untrusted) must not make the VE's party sign M9a or feed its application frames. The DTM
      // refuses forged source addresses, so the source is the sending port's.
      const from = formatMac(src);
      if (!sameMac(src, this.opts.firewall)) {
        this.drop(from, 'a protocol transaction not from the firewall');
        return;
      }
      const r = this.assembler.push(from, payload);
      if (r.dropped !== undefined) this.drop(from, r.dropped);
      if (r.content !== undefined) this.handleTransaction(from, r.content);
      return;
    }
    if (type === ETHERTYPE_DATAGRAM) {
      const node = [...this.nodes.values()].find((n) => sameMac(n.node.mac, src));
      if (node === undefined) {
        this.drop(formatMac(src), 'a datagram from no node VE');
        return;
      }
      this.report(node, payload);
      return;
    }
    this.drop(formatMac(src), `ethernet type 0x${type.toString(16)} is not for the agent`);
  }

  private handleTransaction(from: string, content: Uint8Array): void {
    this.counts.transactionsIn++;
    let to: Name | '';
    try {
      to = decodeFrame(content).to;
    } catch (e) {
      this.drop(from, `not a protocol frame (${e instanceof ClefnetError ? e.code : 'error'})`);
      return;
    }
    const target = to === '' ? undefined : this.parties.get(to);
    if (target === undefined) {
      this.drop(from, `no party here for ${JSON.stringify(to)}`);
      return;
    }
    this.handle(target.party.receive(content), target.node);
  }

  private report(n: NodeState, data: Uint8Array): void {
    if (n.app === undefined) {
      this.drop(n.node.ve, 'a report before the application has its channel');
      return;
    }
    if (this.opts.asd === undefined) {
      this.drop(n.node.ve, 'a report, but no ASD is configured');
      return;
    }
    this.counts.reports++;
    this.opts.onEvent({
      kind: 'agent',
      action: 'report',
      ve: n.node.ve,
      app: n.app.name,
      bytes: data.length,
    });
    this.handle(n.app.request(this.opts.asd, data.slice()), n);
  }

  private handle(o: Outcome, n: NodeState): void {
    for (const e of o.events) this.opts.onProtocolEvent(e);
    for (const s of o.send) this.opts.toNetwork(s);
    for (const d of o.deliver) {
      if (d.kind === 'program') {
        this.transmit(d.program, n.node.mac);
        this.counts.modulesDelivered++;
        const m = {
          ve: n.node.ve,
          sender: d.sender,
          digest: d.digest,
          bytes: d.program.length,
          at: this.opts.clock(),
        };
        this.history.push(m);
        if (this.history.length > HISTORY) this.history.shift();
        this.opts.onEvent({ kind: 'module', action: 'delivered', ...m });
      } else if (d.kind === 'secapp') {
        if (n.app !== undefined) this.parties.delete(n.app.name);
        n.app = new SecApp({
          triple: d.triple,
          backend: this.opts.backend,
          random: this.opts.random,
          ...(this.opts.ephemeral === undefined ? {} : { ephemeral: this.opts.ephemeral }),
          clock: this.opts.clock,
          profile: this.opts.profile,
          keyServers: [{ name: d.keyServer.name, clef: d.keyServer.clef, scopes: ['relay'] }],
          ...(this.opts.requestTimeoutMs === undefined
            ? {}
            : { requestTimeoutMs: this.opts.requestTimeoutMs }),
        });
        this.parties.set(d.triple.name, { party: n.app, node: n });
        this.opts.onEvent({
          kind: 'agent',
          action: 'channel',
          ve: n.node.ve,
          app: d.triple.name,
          keyServer: d.keyServer.name,
        });
      } else if (d.kind === 'request-failed') {
        if (d.step === 'OPEN') this.counts.reportsFailed++;
        this.opts.onEvent({
          kind: 'agent',
          action: 'request-failed',
          ve: n.node.ve,
          step: d.step,
          code: d.code,
          ...(d.remote === undefined ? {} : { remote: d.remote }),
        });
      } else if (d.kind === 'channel-data') {
        this.counts.reportsAnswered++;
        this.opts.onEvent({
          kind: 'agent',
          action: 'report-answer',
          ve: n.node.ve,
          peer: d.peer,
          bytes: d.data.length,
        });
      }
    }
  }

  /** A transaction into the inside DTM (a module to a node VE). */
  private transmit(content: Uint8Array, dst: Uint8Array): void {
    this.counts.transactionsOut++;
    for (const f of fragment(content, dst, this.mac, this.txid)) this.outbox.push(f);
    this.txid = (this.txid + 1) >>> 0 || 1;
  }

  private drop(from: string, reason: string): void {
    this.counts.dropped++;
    this.opts.onEvent({ kind: 'agent', action: 'dropped', from, reason });
  }
}
