/**
 * Where a frame the party addressed to a Name goes (TB-15: routing data is never trusted for a
 * security decision, but it decides who gets to see and drop a frame):
 *
 * 1. an answer to the frame being handled, addressed to the Name that frame claimed to come from,
 *    goes back on the link it came in on (the gateway does this before asking the router);
 * 2. a later answer (e.g. after KServ2 resolved the requester upstream, a relayed reply, a timeout)
 *    goes to the link its request came in on: for each request the party accepted without
 *    answering at once, the router queues (requester Name, corr) -> link; answers with that Name
 *    and corr take the queued links in arrival order, which is the order in which the party
 *    handles the messages it parked. So every copy of a request is answered on its own link:
 *    a replayed copy cannot take the original's answer, whether the party serves the copy too
 *    (patent) or drops it after the lookup (hardened, REPLAY: its queue entry stays unused until
 *    its link closes);
 * 3. otherwise the Name's directory entry: an outbound connection, dialled once and reused (the
 *    `connect` hook decides where it really goes, so a proxy can sit on every hop).
 * A request the party refuses at once leaves no route at all.
 */
import type { Name } from '@clefnet/protocol';
import type { Link } from './link.js';

/** (Name, corr) keys remembered at most; the least recently used is forgotten first. */
const MAX_ROUTES = 65_536;
/** Links queued under one key at most (a party parks at most 256 messages by default). */
const MAX_PER_KEY = 256;

export interface Router {
  /** Queues `link` for the answer to `name`'s request `corr`. */
  learn(name: Name, corr: string, link: Link): void;
  /** The link for a frame to `to` answering `corr`, or undefined (no route, no directory entry). */
  route(to: Name | '', corr: string): Link | undefined;
  /** Drops every route through `link` (it closed). */
  forget(link: Link): void;
}

export interface RouterOptions {
  readonly directory: ReadonlyMap<Name, string>;
  /** Opens an outbound link to `url` for `peer`; undefined when it cannot be opened. */
  readonly dial: (url: string, peer: Name) => Link | undefined;
}

export function createRouter(opts: RouterOptions): Router {
  const routes = new Map<string, Link[]>();
  /** The keys under which each link is queued, so that a closing link is forgotten quickly. */
  const byLink = new Map<Link, Set<string>>();
  const dialled = new Map<string, Link>();
  const key = (name: string, corr: string) => `${name}\n${corr}`;

  const outbound = (to: Name): Link | undefined => {
    const url = opts.directory.get(to);
    if (url === undefined) return undefined;
    const existing = dialled.get(url);
    if (existing?.usable) return existing;
    const link = opts.dial(url, to);
    if (link === undefined) dialled.delete(url);
    else dialled.set(url, link);
    return link;
  };

  /** Drops `link` from the index of `k` unless it is still queued there. */
  const unindex = (k: string, link: Link): void => {
    if (routes.get(k)?.includes(link) === true) return;
    const keys = byLink.get(link);
    keys?.delete(k);
    if (keys?.size === 0) byLink.delete(link);
  };
  const dropKey = (k: string): void => {
    const queue = routes.get(k) ?? [];
    routes.delete(k);
    for (const link of queue) unindex(k, link);
  };

  return {
    learn(name, corr, link) {
      const k = key(name, corr);
      const queue = routes.get(k) ?? [];
      routes.delete(k); // re-inserted: most recently used last
      queue.push(link);
      routes.set(k, queue);
      const keys = byLink.get(link) ?? new Set<string>();
      byLink.set(link, keys);
      keys.add(k);
      if (queue.length > MAX_PER_KEY) unindex(k, queue.shift()!);
      if (routes.size > MAX_ROUTES) {
        const oldest = routes.keys().next();
        if (oldest.done !== true) dropKey(oldest.value);
      }
    },
    route(to, corr) {
      const k = key(to, corr);
      const queue = routes.get(k);
      while (queue !== undefined && queue.length > 0) {
        const link = queue.shift()!;
        if (queue.length === 0) routes.delete(k);
        unindex(k, link);
        if (link.usable) return link;
      }
      return to === '' ? undefined : outbound(to);
    },
    forget(link) {
      for (const k of byLink.get(link) ?? []) {
        const rest = (routes.get(k) ?? []).filter((l) => l !== link);
        if (rest.length === 0) routes.delete(k);
        else routes.set(k, rest);
      }
      byLink.delete(link);
      for (const [url, l] of dialled) if (l === link) dialled.delete(url);
    },
  };
}
