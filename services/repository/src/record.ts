/**
 * From the Repository party's outcomes to the deployment rows: which deployment each step belongs
 * to, and its result. The party tags only some events with their deployment (`deployment`,
 * `clef-accepted`, `triple-accepted`, `request-failed`) and deliveries (`deployment`,
 * `request-failed`); the `sent` and `received` events of a step carry the peer but not the
 * deployment. Within one outcome (one call of the party) every untagged item belongs to the next
 * tagged one after it, or, if none follows, to the last one before it: the party always tags a
 * deployment's batch in one of those two places.
 * Items of an outcome without any tag (a refused frame) belong to no deployment; the service's
 * event stream still has them.
 */
import type { Delivery, Outcome, ProtocolEvent } from '@clefnet/protocol';
import type { SqliteRepositoryStore, StepRecord } from './store.js';

/** Deployment ids of the party are the store's row ids, as decimal strings. */
export const deploymentId = (id: number): string => String(id);

function owners<T>(items: readonly T[], tag: (item: T) => string | undefined): (string | undefined)[] {
  const out: (string | undefined)[] = new Array(items.length);
  let next: string | undefined;
  for (let i = items.length - 1; i >= 0; i--) {
    next = tag(items[i]!) ?? next;
    out[i] = next;
  }
  let last: string | undefined;
  for (let i = 0; i < items.length; i++) {
    last = tag(items[i]!) ?? last;
    out[i] ??= last;
  }
  return out;
}

function stepOfEvent(e: ProtocolEvent): StepRecord | undefined {
  const peer = e.peer ?? null;
  if (e.type === 'sent' && e.step !== undefined)
    return { at: e.at, step: e.step, kind: 'sent', peer, result: 'ok', detail: null };
  if (e.type === 'received' && e.step !== undefined) {
    // The frame-level `received` of an error answer has no code; the verified one that follows has.
    if (e.step === 'ERR')
      return e.code === undefined
        ? undefined
        : { at: e.at, step: 'ERR', kind: 'received', peer, result: e.code, detail: e.detail ?? null };
    return { at: e.at, step: e.step, kind: 'received', peer, result: 'ok', detail: null };
  }
  if (e.type === 'clef-accepted')
    return { at: e.at, step: 'M3', kind: 'accepted', peer, result: 'ok', detail: e.clef ?? null };
  if (e.type === 'triple-accepted')
    return { at: e.at, step: 'M6', kind: 'accepted', peer, result: 'ok', detail: e.subject ?? null };
  return undefined;
}

/**
 * Stores what `outcome` says about deployments: their state changes and steps. Runs inside the
 * transaction of the operation or message that produced it.
 */
export function recordOutcome(store: SqliteRepositoryStore, outcome: Outcome, at: number): void {
  // Whether a deployment has a row, asked once per deployment and outcome (an outcome's dozen
  // items belong to one or two deployments).
  const known = new Map<string, boolean>();
  const has = (id: string | undefined): id is string => {
    if (id === undefined) return false;
    let v = known.get(id);
    if (v === undefined) {
      v = store.hasDeployment(Number(id));
      known.set(id, v);
    }
    return v;
  };
  const events = outcome.events;
  const evOwners = owners(events, (e) => e.deployment);
  events.forEach((e, i) => {
    const id = evOwners[i];
    if (!has(id)) return;
    if (e.type === 'deployment' && e.state !== undefined) {
      const state = e.state as 'resolving' | 'minting' | 'sent' | 'failed';
      store.setState(Number(id), state, e.code ?? null, e.at);
      return;
    }
    const step = stepOfEvent(e);
    if (step !== undefined) store.addStep(Number(id), step);
  });
  const deliveries = outcome.deliver;
  // The party names the deployment of a failed request (two can fail in one timeout sweep).
  const dOwners = owners(deliveries, (d: Delivery) =>
    d.kind === 'deployment' ? d.id : d.kind === 'request-failed' ? d.deployment : undefined,
  );
  deliveries.forEach((d, i) => {
    const id = dOwners[i];
    if (d.kind !== 'request-failed' || !has(id)) return;
    store.addStep(Number(id), {
      at,
      step: d.step,
      kind: 'failed',
      peer: d.peer,
      result: d.code,
      detail: d.remote ?? null,
    });
  });
}
