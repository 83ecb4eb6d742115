/**
 * The Active Repository, AR (PROTO-9, steps 1, 4, 5, 7 and the triple hand-over of PROTO-23).
 *
 * `deploy()` starts one download: ask KServ1 for the ANC's Clef (M1), take it from the answer
 * (M3, step 4), if the program needs a SecApp triple ask KServ2 for one (M5/M6), then send the
 * program sealed to the ANC (M7) and hand the triple over. The AR keeps no copy of the triple
 * once it is sent ([0132]) and forgets the program when the deployment ends.
 *
 * Step order: `published` (the default) asks for the triple only after step 4, as [0120]-[0126]
 * read; `overlapped` sends M1 and M5 together and goes on with step 7 when both answers are in.
 * The messages and every check are the same; a download waits for one key-server round trip
 * instead of two. The price: KServ2 mints before step 4 has shown that the ANC can be reached, so
 * a deployment whose step 1 fails still leaves a fresh binding of the SecApp Name at KServ2 (the
 * triple itself is dropped, never handed over): under `reject-if-exists` that Name is then taken,
 * under `overwrite` or `owner-only` it replaces the binding an earlier deployment's application
 * holds. A deployment whose other half fails discards what the first half brought.
 */
import { toHex, utf8 } from '../codec.js';
import type { Envelope } from '../envelope.js';
import { type ErrorCode, ProtocolError } from '../errors.js';
import type { Frame } from '../frame.js';
import { type AuthorityTriple, type Clef, checkTriple, clefId } from '../identity.js';
import { LIMITS } from '../limits.js';
import type { Payload } from '../messages.js';
import type { Name } from '../names.js';
import { type KnownKeyServer, type Outcome, Party, type PartyOptions, type Pending } from './core.js';

export interface RepositoryOptions extends PartyOptions {
  /** Network location of the minting key server, passed on in the hand-over (PROTO-23). */
  readonly mintLocation?: string;
  /** At most this many deployments remembered (default 1024; finished ones are dropped first). */
  readonly maxDeployments?: number;
  /** `published` (default): M5 after step 4; `overlapped`: M1 and M5 at once (see the module comment). */
  readonly stepOrder?: StepOrder;
}

/** The AR's step orders (see the module comment). */
export const STEP_ORDERS = ['published', 'overlapped'] as const;
export type StepOrder = (typeof STEP_ORDERS)[number];

export interface DeployRequest {
  readonly anc: Name;
  readonly program: Uint8Array;
  /** Name for a new SecApp triple (step 5), when the program needs one. */
  readonly secApp?: Name;
  readonly id?: string;
}

/**
 * `resolving`: waiting for the ANC's Clef (and, overlapped, perhaps for the triple too);
 * `minting`: the Clef is taken, the triple is still to come; then `sent` or `failed`.
 */
export type DeploymentState = 'resolving' | 'minting' | 'sent' | 'failed';

export interface Deployment {
  readonly id: string;
  readonly anc: Name;
  readonly secApp: Name | undefined;
  state: DeploymentState;
  /** The Clef the AR took for the ANC in step 4 (its short id). */
  ancClef: string | undefined;
  code: ErrorCode | undefined;
}

interface Working {
  readonly public: Deployment;
  program: Uint8Array | undefined;
  clef: Clef | undefined;
  triple: AuthorityTriple | undefined;
  tripleAsked: boolean;
}

export class Repository extends Party {
  private readonly deployments = new Map<string, Working>();
  private readonly mintLocation: string;
  private readonly maxDeployments: number;
  readonly stepOrder: StepOrder;

  constructor(opts: RepositoryOptions) {
    super(opts);
    this.mintLocation = opts.mintLocation ?? '';
    if (utf8(this.mintLocation).length > LIMITS.LOCATION_MAX_BYTES) {
      throw new ProtocolError('CONFIG_INVALID', `mintLocation over ${LIMITS.LOCATION_MAX_BYTES} bytes`);
    }
    this.maxDeployments = opts.maxDeployments ?? 1024;
    this.stepOrder = opts.stepOrder ?? 'published';
    if (!STEP_ORDERS.includes(this.stepOrder)) {
      throw new ProtocolError('CONFIG_INVALID', `unknown step order ${JSON.stringify(this.stepOrder)}`);
    }
  }

  deployment(id: string): Deployment | undefined {
    return this.deployments.get(id)?.public;
  }

  /** Starts steps 1-7 for one program. */
  deploy(req: DeployRequest): Outcome {
    return this.run(() => {
      if (req.program.length > LIMITS.PROGRAM_MAX_BYTES) {
        throw new ProtocolError('ENCODING_TOO_LARGE', `program of ${req.program.length} bytes`);
      }
      const id = req.id ?? toHex(this.random(8));
      if (this.deployments.has(id)) throw new ProtocolError('CONFIG_INVALID', `deployment ${id} exists`);
      // Everything that can refuse the deployment before its first request leaves: nothing is sent
      // and nothing remembered for a deployment that cannot go on.
      if (req.secApp !== undefined) this.mintServer();
      const asks = req.secApp !== undefined && this.stepOrder === 'overlapped' ? 2 : 1;
      if (!this.roomFor(asks)) {
        throw new ProtocolError('LIMIT_EXCEEDED', `no room for ${asks} more outstanding request(s)`);
      }
      this.makeRoom();
      const d: Working = {
        public: {
          id,
          anc: req.anc,
          secApp: req.secApp,
          state: 'resolving',
          ancClef: undefined,
          code: undefined,
        },
        program: req.program,
        clef: undefined,
        triple: undefined,
        tripleAsked: false,
      };
      this.deployments.set(id, d);
      this.event('deployment', { deployment: id, subject: req.anc, state: 'resolving' });
      const cached = this.cachedClef(req.anc);
      if (cached !== undefined) {
        this.tookClef(d, cached, undefined);
        return;
      }
      this.ask({
        to: this.clefServer(),
        scope: 'clef',
        body: { type: 'clef-query', subject: req.anc },
        step: 'M1',
        expect: 'clef-answer',
        answerStep: 'M3',
        subject: req.anc,
        ctx: id,
      });
      if (this.stepOrder === 'overlapped' && req.secApp !== undefined) this.askForTriple(d);
    });
  }

  protected onMessage(_frame: Frame, env: Envelope): void {
    throw new ProtocolError('BAD_STATE', `the repository takes no requests (from ${env.sender})`);
  }

  protected onResolved(): void {
    throw new ProtocolError('BAD_STATE', 'the repository resolves no senders');
  }

  protected override onAnswer(p: Pending, answer: Payload, from: Name): void {
    const d = this.deployments.get(p.ctx as string);
    // Overlapped, the other half failed first (the deployment may since have been forgotten): the
    // answer was asked for and verified, but the deployment is over; what it brings is dropped (a
    // triple is never kept, [0132]).
    if (d === undefined || d.public.state === 'failed') return;
    if (d.public.state === 'sent') {
      throw new ProtocolError('BAD_STATE', `no deployment waits for this answer from ${from}`);
    }
    const body = answer.body;
    if (body.type === 'clef-answer') {
      // Step 4: under `patent` the Clef is taken for the ANC that was asked about, whatever the
      // answer names (the answer-binding rule checks the subject before we get here).
      this.rememberClef(d.public.anc, body.clef, answer.header);
      this.tookClef(d, body.clef, from);
    } else if (body.type === 'triple') {
      checkTriple(this.backend, body.triple);
      d.triple = body.triple;
      this.event('triple-accepted', {
        subject: body.triple.name,
        deployment: d.public.id,
        peer: from,
      });
      if (d.clef !== undefined) this.sendProgram(d);
    } else {
      throw new ProtocolError('BAD_STATE', `unexpected answer ${answer.tag}`);
    }
  }

  protected override deploymentOf(p: Pending): string | undefined {
    return typeof p.ctx === 'string' ? p.ctx : undefined;
  }

  protected override onFailed(p: Pending, error: ProtocolError): void {
    const d = this.deployments.get(p.ctx as string);
    if (d === undefined || d.public.state === 'failed' || d.public.state === 'sent') return;
    this.finish(d, 'failed', error.code);
  }

  /** Step 4 done (or skipped with a cached Clef): on to step 5 or 7. */
  private tookClef(d: Working, clef: Clef, from: Name | undefined): void {
    d.clef = clef;
    d.public.ancClef = clefId(clef);
    this.event('clef-accepted', {
      subject: d.public.anc,
      clef: clefId(clef),
      deployment: d.public.id,
      ...(from === undefined ? {} : { peer: from }),
    });
    if (d.public.secApp === undefined || d.triple !== undefined) {
      this.sendProgram(d);
      return;
    }
    d.public.state = 'minting';
    this.event('deployment', { deployment: d.public.id, subject: d.public.anc, state: 'minting' });
    // Step 5 now, unless M5 already left with M1 (overlapped).
    if (!d.tripleAsked) this.askForTriple(d);
  }

  private mintServer(): KnownKeyServer {
    for (const k of this.keyServers.values()) if (k.scopes.includes('mint')) return k;
    throw new ProtocolError('CONFIG_INVALID', 'the repository knows no key server with scope mint');
  }

  /** Step 5 (after step 4, or overlapped with steps 1-4 right after M1). */
  private askForTriple(d: Working): void {
    const secApp = d.public.secApp!;
    this.ask({
      to: this.mintServer(),
      scope: 'mint',
      body: { type: 'new-query', subject: secApp },
      step: 'M5',
      expect: 'triple',
      answerStep: 'M6',
      subject: secApp,
      ctx: d.public.id,
    });
    d.tripleAsked = true;
  }

  /** Step 7 and the hand-over of PROTO-23. */
  private sendProgram(d: Working): void {
    const anc = { name: d.public.anc, clef: d.clef! };
    this.sendTo(anc, { type: 'program', program: d.program! }, 'M7');
    if (d.triple !== undefined) {
      const keyServer = this.mintServer().name;
      this.sendTo(
        anc,
        { type: 'handover', triple: d.triple, keyServer, location: this.mintLocation },
        'HANDOVER',
      );
    }
    this.finish(d, 'sent', undefined);
  }

  private finish(d: Working, state: 'sent' | 'failed', code: ErrorCode | undefined): void {
    d.public.state = state;
    d.public.code = code;
    d.program = undefined;
    d.triple = undefined; // [0132]: the AR keeps no copy
    this.event('deployment', {
      deployment: d.public.id,
      subject: d.public.anc,
      state,
      ...(code === undefined ? {} : { code }),
    });
    this.deliver({ kind: 'deployment', id: d.public.id, state, ...(code === undefined ? {} : { code }) });
  }

  private makeRoom(): void {
    if (this.deployments.size < this.maxDeployments) return;
    for (const [id, d] of this.deployments) {
      if (d.public.state === 'sent' || d.public.state === 'failed') {
        this.deployments.delete(id);
        return;
      }
    }
    throw new ProtocolError('LIMIT_EXCEEDED', `${this.maxDeployments} deployments in progress`);
  }
}

export function createRepository(opts: RepositoryOptions): Repository {
  return new Repository(opts);
}
