/**
 * One ANC machine (CFG-20's ANC 200): the emulated machine with the VM manager in real ring 0, its
 * VEs booted from profiles, gateway 22 on the real NIC, the virtual firewall (Fig. 10 A, B or C)
 * with its DTMs in real ring 1, the protocol agent on the inside DTM, and the key trap's service.
 *
 * ```
 *  network ──frames──► real NIC ─► gateway 22 ─► outside DTM ─► firewall VE ─► inside DTM ─┬─► agent
 *                                                                                          └─► node VEs
 * ```
 *
 * What enters from the network is a protocol frame (wrapped in a transaction to the firewall's
 * outside address) or raw traffic (an ethernet frame a traffic source addressed to it). Protocol
 * frames leave from the real environment itself: the agent's (step 9, the ASD channel) and the key
 * service's (KEY-7) go to the service's links directly, never through a guest; whatever the real NIC
 * transmits is traffic that left the ANC, so no guest can put a frame on the service's links.
 * Frames addressed to the machine's own Name are the key trap's answers: gateway 22's own traffic,
 * for the VMM's key service.
 *
 * The machine runs in turns on the event loop: frames waiting for the real NIC go in and the real
 * environment has its turn (the core dispatches real interrupts, the DTMs and the agent run), then
 * each VE gets a slice with the real environment's turn after it; when every VE is halted waiting
 * for a device and nothing is queued, the loop sleeps until a frame arrives.
 */
import {
  type DtmEvent,
  ETHERNET_HEADER,
  type FirewallConfig,
  FL,
  FW_IN,
  formatMac,
  Gateway,
  installMachineKey,
  type KeyService,
  memoryNvramBackend,
  memorySpool,
  type NvramBackend,
  type Spool,
  type VeProfile,
  type VirtualEnvironment,
  type VirtualFirewall,
  Vmm,
  veMac,
  virtualFirewall,
} from '@clefnet/emulator';
import {
  type AuthorityTriple,
  ClefnetError,
  type CryptoBackend,
  decodeFrame,
  type EphemeralPool,
  type KnownKeyServer,
  type Name,
  type Outbound,
  type ProfileName,
  type ProtocolEvent,
  type RandomSource,
} from '@clefnet/protocol';
import type { MachineEventData } from '@clefnet/service-host';
import { Agent, type AgentStats, type InstalledModule } from './agent.js';
import { AGENT_MAC, CHUNK_BYTES, fragment, NET_MAC } from './wire.js';

export type VeRole = 'firewall' | 'node';

export interface NodeVe {
  readonly profile: VeProfile;
  readonly role: VeRole;
  /** Node VEs: Names allowed to send programs (closed model, step 8); empty = open model. */
  readonly senders?: readonly Name[];
}

export interface AncNodeOptions {
  /** The machine triple {Name-M, Clef-M, Key-M}, installed in the real NVRAM (KEY-1, KEY-2). */
  readonly machine: AuthorityTriple;
  /** KServ1: scope `clef` (step 9) and `mint` (VE keys, KEY-7). */
  readonly keyServer: KnownKeyServer;
  /**
   * Other key servers the node VEs are provisioned with (KEY-12), e.g. KServ2 with scope `relay`:
   * a hand-over naming one of them needs no resolution of its Clef.
   */
  readonly otherKeyServers?: readonly KnownKeyServer[];
  readonly ves: readonly NodeVe[];
  readonly firewall: { readonly config: FirewallConfig; readonly confirmOutbound?: boolean };
  readonly backend: CryptoBackend;
  readonly random: RandomSource;
  /** Ephemeral keys for the agent's and the key service's sealed messages (PartyOptions.ephemeral). */
  readonly ephemeral?: EphemeralPool;
  readonly clock: () => number;
  readonly profile: ProfileName;
  /** Where node VEs' reports go. */
  readonly asd?: Name;
  /** The real NVRAM (default memory). */
  readonly nvram?: NvramBackend;
  /** DTM spool (104e) and firewall spool (106a); default memory. */
  readonly spools?: { readonly dtm: Spool; readonly firewall: Spool };
  /** Real RAM (default 32 MiB). */
  readonly ramBytes?: number;
  /** Instructions per VE per turn (default 50,000). */
  readonly slice?: number;
  readonly requestTimeoutMs?: number;
  /** A protocol frame leaves the real environment (agent, key service) for the network. */
  readonly toNetwork: (o: Outbound) => void;
  /** Traffic left the machine through the real NIC. */
  readonly onTraffic?: (frame: Uint8Array) => void;
  readonly onEvent: (e: MachineEventData) => void;
  readonly onProtocolEvent: (e: ProtocolEvent) => void;
}

export interface VeStatus {
  readonly id: number;
  readonly name: string;
  readonly role: VeRole;
  readonly mac: string;
  /** `running`, `waiting` (halted for a device), or `stopped` (with the reason). */
  readonly state: 'running' | 'waiting' | 'stopped';
  readonly stopReason?: string;
  readonly key?: { readonly name: string; readonly version: number };
  readonly app?: string;
  readonly instructions: number;
  readonly traps: number;
  readonly ringChanges: Readonly<Record<string, number>>;
  readonly nic: { readonly received: number; readonly transmitted: number; readonly dropped: number };
}

/** The largest protocol frame a DTM passes whole (its 64-fragment transactions). */
const MAX_WIRE_FRAME = 64 * CHUNK_BYTES;
/** Frames waiting for room in the real NIC, in bytes, before more are dropped. */
const MAX_BACKLOG_BYTES = 16 << 20;
/** How often a sleeping machine still takes a turn. */
const HOUSEKEEPING_MS = 1000;
/** The real NVRAM's size (the machine's default). */
const NVRAM_BYTES = 256;
/** Console text kept per VE. */
const CONSOLE_KEEP = 64 * 1024;

export class AncNode {
  readonly vmm: Vmm;
  readonly gateway: Gateway;
  readonly firewall: VirtualFirewall;
  readonly agent: Agent;
  readonly keyService: KeyService;
  /** The firewall's outside address: where traffic for this ANC is sent. */
  readonly outsideMac: Uint8Array;
  private readonly opts: AncNodeOptions;
  private readonly roles = new Map<number, VeRole>();
  private readonly consoles = new Map<number, string>();
  private readonly consoleTotals = new Map<number, number>();
  private readonly stopped = new Map<number, string>();
  private readonly waiting = new Set<number>();
  private readonly backlog: Uint8Array[] = [];
  private backlogBytes = 0;
  private readonly slice: number;
  private txid = 1;
  private running = false;
  private timer: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private housekeeping: NodeJS.Timeout | undefined;
  private readonly counts = { framesIn: 0, trafficIn: 0, trafficOut: 0, turns: 0 };

  constructor(opts: AncNodeOptions) {
    this.opts = opts;
    this.slice = opts.slice ?? 50_000;
    const firewalls = opts.ves.filter((v) => v.role === 'firewall');
    if (firewalls.length !== 1)
      throw new ClefnetError('CONFIG_INVALID', `an ANC has exactly one firewall VE, not ${firewalls.length}`);
    if (!opts.ves.some((v) => v.role === 'node'))
      throw new ClefnetError('CONFIG_INVALID', 'an ANC needs at least one node VE');
    const names = new Set(opts.ves.map((v) => v.profile.name));
    if (names.size !== opts.ves.length) throw new ClefnetError('CONFIG_INVALID', 'VE names must be unique');

    // KEY-2: the machine triple is installed in the real NVRAM, then read (and hidden) at boot.
    const nvram = opts.nvram ?? memoryNvramBackend();
    nvram.store(
      installMachineKey(nvram.load() ?? new Uint8Array(NVRAM_BYTES), opts.machine.name, opts.machine.key),
    );
    const vmm = new Vmm({
      clock: opts.clock,
      ramBytes: opts.ramBytes ?? 32 << 20,
      nvram,
      onEvent: opts.onEvent,
    });
    this.vmm = vmm;
    vmm.bootMachineKey(opts.backend);
    this.gateway = new Gateway(vmm);

    const created: { ve: VirtualEnvironment; spec: NodeVe }[] = [];
    for (const spec of opts.ves) {
      if (spec.role === 'node' && spec.profile.keyTrap === undefined)
        throw new ClefnetError('CONFIG_INVALID', `node VE ${spec.profile.name} needs key_trap (its Name-VE)`);
      const ve = vmm.createVe({ ...spec.profile, ...(spec.role === 'firewall' ? { nics: 2 as const } : {}) });
      this.roles.set(ve.id, spec.role);
      created.push({ ve, spec });
    }
    const fw = created.find((c) => c.spec.role === 'firewall')!.ve;
    this.outsideMac = veMac(fw.id, 1);
    const onDtm = (e: DtmEvent) => opts.onEvent({ ...e });
    this.firewall = virtualFirewall({
      config: opts.firewall.config,
      core: vmm.core,
      clock: opts.clock,
      firewall: { inside: fw.vm.nics[0]!, outside: fw.vm.nics[1]! },
      gateway: this.gateway,
      spools: opts.spools ?? { dtm: memorySpool(), firewall: memorySpool() },
      ...(opts.firewall.confirmOutbound === undefined
        ? {}
        : { confirmOutbound: opts.firewall.confirmOutbound }),
      onEvent: onDtm,
    });

    this.agent = new Agent({
      backend: opts.backend,
      random: opts.random,
      ...(opts.ephemeral === undefined ? {} : { ephemeral: opts.ephemeral }),
      clock: opts.clock,
      profile: opts.profile,
      keyServers: [{ ...opts.keyServer, scopes: ['clef'] }, ...(opts.otherKeyServers ?? [])],
      ...(opts.asd === undefined ? {} : { asd: opts.asd }),
      ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
      firewall: veMac(fw.id, 0),
      toNetwork: opts.toNetwork,
      onProtocolEvent: opts.onProtocolEvent,
      onEvent: opts.onEvent,
    });
    const inside = this.firewall.inside;
    const nodes = created.filter((c) => c.spec.role === 'node').map((c) => c.ve.name);
    inside.attach({
      name: 'agent',
      nic: this.agent,
      reach: [FW_IN, ...nodes],
      accept: [FW_IN, ...nodes],
    });
    for (const { ve, spec } of created) {
      if (spec.role !== 'node') continue;
      inside.attach({
        name: ve.name,
        nic: ve.vm.nic,
        reach: [FW_IN, 'agent'],
        accept: [FW_IN, 'agent'],
      });
      this.agent.addNode({ ve: ve.name, mac: veMac(ve.id), senders: spec.senders ?? [] });
    }
    for (const d of this.firewall.dtms) vmm.addService(() => d.service());
    vmm.addService(() => this.agent.service());
    vmm.keys.onInstall((e) => this.agent.keyInstalled(e));

    this.keyService = vmm.startKeyService({
      keyServer: opts.keyServer,
      transport: opts.toNetwork,
      backend: opts.backend,
      random: opts.random,
      ...(opts.ephemeral === undefined ? {} : { ephemeral: opts.ephemeral }),
      clock: opts.clock,
      profile: opts.profile,
      onEvent: opts.onProtocolEvent,
    });

    vmm.machine.nic.on('transmit', (f) => this.leaving(f));
  }

  /** Who this machine is and its addresses: the machine's Name, the firewall's outside address, the agent's. */
  info(): {
    readonly machine: Name;
    readonly profile: ProfileName;
    readonly outside: string;
    readonly agent: string;
  } {
    return {
      machine: this.opts.machine.name,
      profile: this.opts.profile,
      outside: this.outsideMacText,
      agent: formatMac(AGENT_MAC),
    };
  }

  /** {@link outsideMac} as `02:c1:ef:..`. */
  get outsideMacText(): string {
    return formatMac(this.outsideMac);
  }

  /** A protocol frame from the network (TB-15 bytes). */
  fromNetwork(bytes: Uint8Array): void {
    let to: Name | '';
    try {
      to = decodeFrame(bytes).to;
    } catch (e) {
      this.opts.onEvent({
        kind: 'wire',
        action: 'dropped',
        reason: e instanceof ClefnetError ? e.code : 'bad frame',
      });
      return;
    }
    this.counts.framesIn++;
    if (to === this.opts.machine.name) {
      this.keyService.receive(bytes);
    } else {
      // What the firewall cannot pass whole is not queued at all, nor what would overfill the queue.
      if (bytes.length > MAX_WIRE_FRAME) {
        this.opts.onEvent({
          kind: 'wire',
          action: 'dropped',
          reason: `a frame of ${bytes.length} bytes (at most ${MAX_WIRE_FRAME} pass the firewall)`,
        });
        return;
      }
      if (this.backlogBytes + bytes.length > MAX_BACKLOG_BYTES) {
        this.opts.onEvent({ kind: 'wire', action: 'dropped', reason: 'the real NIC backlog is full' });
        return;
      }
      for (const f of fragment(bytes, this.outsideMac, NET_MAC, this.txid)) this.queue(f);
      this.txid = (this.txid + 1) >>> 0 || 1;
    }
    this.wake();
  }

  /** Raw traffic into the real NIC (an ethernet frame, e.g. addressed to {@link outsideMac}). */
  inject(frame: Uint8Array): void {
    if (frame.length < ETHERNET_HEADER || frame.length > 1514)
      throw new ClefnetError('ENCODING_BAD_VALUE', `a frame of ${frame.length} bytes (14..1514)`);
    if (this.backlogBytes + frame.length > MAX_BACKLOG_BYTES)
      throw new ClefnetError('LIMIT_EXCEEDED', 'the real NIC backlog is full: try again when it drains');
    this.counts.trafficIn++;
    this.queue(frame.slice());
    this.wake();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  stop(): void {
    this.running = false;
    this.clearHousekeeping();
    if (this.timer !== undefined) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = undefined;
    }
  }

  /** Console bytes the VE has printed since boot (the text keeps the last 64 KiB of them). */
  consoleTotal(ve: string): number {
    return this.consoleTotals.get(this.collected(ve).id) ?? 0;
  }

  console(ve: string): string {
    return this.consoles.get(this.collected(ve).id) ?? '';
  }

  /** VE `ve`, its console text collected up to now. */
  private collected(ve: string): VirtualEnvironment {
    const v = this.vmm.list().find((x) => x.name === ve);
    if (v === undefined) throw new ClefnetError('UNKNOWN_NAME', `no VE ${ve}`);
    this.collectConsole(v);
    return v;
  }

  installed(ve?: string): InstalledModule[] {
    return this.agent.installed(ve);
  }

  ves(): VeStatus[] {
    return this.vmm.list().map((v) => {
      const s = v.stats();
      const key = this.vmm.keys.get(v.name);
      const nic = v.vm.nic.stats();
      const names = this.agent.names(v.name);
      const stopReason = this.stopped.get(v.id);
      return {
        id: v.id,
        name: v.name,
        role: this.roles.get(v.id) ?? 'node',
        mac: formatMac(veMac(v.id)),
        state: stopReason !== undefined ? 'stopped' : this.waiting.has(v.id) ? 'waiting' : 'running',
        ...(stopReason === undefined ? {} : { stopReason }),
        ...(key === undefined ? {} : { key: { name: key.name, version: key.version } }),
        ...(names.app === undefined ? {} : { app: names.app }),
        instructions: s.instructions,
        traps: s.traps,
        ringChanges: s.ringChanges,
        nic: { received: nic.rxFrames, transmitted: nic.txFrames, dropped: nic.rxDropped },
      };
    });
  }

  stats(): {
    readonly wire: { framesIn: number; trafficIn: number; trafficOut: number; turns: number };
    readonly agent: AgentStats;
    readonly gateway: ReturnType<Gateway['stats']>;
    readonly dtms: Record<string, ReturnType<VirtualFirewall['inside']['stats']>>;
    readonly keyRequests: number;
  } {
    return {
      wire: { ...this.counts },
      agent: this.agent.stats(),
      gateway: this.gateway.stats(),
      dtms: Object.fromEntries(this.firewall.dtms.map((d) => [d.name, d.stats()])),
      keyRequests: this.keyService.requests,
    };
  }

  private wake(): void {
    if (!this.running || this.timer !== undefined) return;
    this.clearHousekeeping();
    this.timer = setImmediate(() => this.loop());
  }

  private loop(): void {
    this.timer = undefined;
    if (!this.running) return;
    const next = this.turn();
    if (!this.running || this.timer !== undefined) return;
    if (next === 'now') this.timer = setImmediate(() => this.loop());
    else if (next === 'soon') this.timer = setTimeout(() => this.loop(), 1);
    else {
      // Asleep until a frame arrives, but a turn a second keeps time-driven work going: request
      // timeouts, unfinished transactions, hold timeouts.
      this.clearHousekeeping();
      this.housekeeping = setTimeout(() => {
        this.housekeeping = undefined;
        this.wake();
      }, HOUSEKEEPING_MS);
      this.housekeeping.unref();
    }
  }

  private clearHousekeeping(): void {
    if (this.housekeeping !== undefined) clearTimeout(this.housekeeping);
    this.housekeeping = undefined;
  }

  /**
   * One turn: backlog into the real NIC (then the core and services, if any frame went in), a
   * slice per VE (the core and services after each).
   */
  private turn(): 'now' | 'soon' | 'sleep' {
    this.counts.turns++;
    let busy = false;
    let timed = false;
    let runnable = 0;
    let failed = false;
    // Frames just put into the real NIC go through the gateway and the DTMs now, so the firewall
    // VE finds them in its queue in this turn's slice, not the next turn's.
    if (this.pump()) {
      try {
        this.vmm.serviceReal();
      } catch (e) {
        this.hostError('pump', undefined, e);
        failed = true;
      }
    }
    for (const v of this.vmm.list()) {
      if (this.stopped.has(v.id)) continue;
      runnable++;
      let r: ReturnType<Vmm['run']>;
      try {
        r = this.vmm.run(v.id, this.slice);
      } catch (e) {
        // Not the guest's doing (its faults are results, not exceptions): the real environment's
        // tasks run inside a slice (the DTMs, the gateway, the agent). The VE goes on; the loop
        // slows down so a failure that repeats cannot spin.
        this.hostError('turn', v.name, e);
        failed = true;
        continue;
      }
      this.collectConsole(v);
      if (r.reason === 'budget') {
        this.waiting.delete(v.id);
        if (r.executed > 0) busy = true;
        else timed = true;
      } else if (r.reason === 'halt') {
        this.waiting.add(v.id);
      } else {
        this.stopVe(v, `${r.reason}${r.vector === undefined ? '' : ` vector ${r.vector}`}`);
      }
    }
    // With no VE left to run nothing drains the NIC or the agent: waiting for them would spin.
    if (runnable === 0) return 'sleep';
    if (failed) return 'soon';
    if (busy || this.backlog.length > 0 || this.agent.busy || this.interruptWaiting()) return 'now';
    return timed ? 'soon' : 'sleep';
  }

  /** A failure of the real environment's code (not the guest's), as a `host-error` machine event. */
  private hostError(where: string, ve: string | undefined, e: unknown): void {
    this.opts.onEvent({
      kind: 'host-error',
      where,
      ...(ve === undefined ? {} : { ve }),
      message: e instanceof Error ? e.message : String(e),
      ...(e instanceof ClefnetError ? { code: e.code } : {}),
    });
  }

  /**
   * A VE halted in this turn before a device raised its line (a frame the DTM delivered after its
   * slice) takes the interrupt in the next turn; a VE that halted with interrupts off does not.
   */
  private interruptWaiting(): boolean {
    if (this.vmm.machine.nic.queued > 0) return true;
    for (const v of this.vmm.list()) {
      if (!this.stopped.has(v.id) && (v.vcpu.eflags & FL.IF) !== 0 && v.vm.pic.pending() >= 0) return true;
    }
    return false;
  }

  private queue(frame: Uint8Array): void {
    this.backlog.push(frame);
    this.backlogBytes += frame.length;
  }

  /** Moves waiting frames into the real NIC while its queue has room; whether any moved. */
  private pump(): boolean {
    const nic = this.vmm.machine.nic;
    let moved = false;
    while (this.backlog.length > 0 && nic.queued < nic.queueCapacity) {
      const f = this.backlog.shift()!;
      this.backlogBytes -= f.length;
      nic.receive(f);
      moved = true;
    }
    return moved;
  }

  private leaving(frame: Uint8Array): void {
    this.counts.trafficOut++;
    this.opts.onTraffic?.(frame.slice());
  }

  private collectConsole(v: VirtualEnvironment): void {
    const text = v.vm.console.transcript();
    if (text.length === 0) return;
    v.vm.console.clearTranscript();
    this.consoleTotals.set(v.id, (this.consoleTotals.get(v.id) ?? 0) + text.length);
    const all = (this.consoles.get(v.id) ?? '') + text;
    this.consoles.set(v.id, all.length > CONSOLE_KEEP ? all.slice(all.length - CONSOLE_KEEP) : all);
    this.opts.onEvent({ kind: 'console', ve: v.name, text });
  }

  private stopVe(v: VirtualEnvironment, reason: string): void {
    this.stopped.set(v.id, reason);
    this.waiting.delete(v.id);
    this.opts.onEvent({ kind: 've', action: 'stopped', ve: v.name, reason });
  }
}
