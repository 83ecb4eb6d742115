/**
 * The VE keys the real environment holds (KEY-5, claims 35-40): per VE, the current limited-use
 * triple {Name-VE, Clef-VE, Key-VE} issued by the key server in answer to the key trap (KEY-7,
 * TB-12), with a version that rotation bumps (KEY-9). It lives in the VM manager's memory (real
 * ring 0); the data transfer manager and the stream encryption read it through this object; no VE
 * can reach another VE's entry (CRYPT-14), and the guest sees its own only as the key trap hands
 * it over (or never, when the key is kept outside the VE, claims 36-38).
 */
import type { Clef, Key } from '@clefnet/protocol';

export interface VeKeyEntry {
  readonly ve: string;
  /** Name-VE as the key server issued it. */
  readonly name: string;
  readonly clef: Clef;
  readonly key: Key;
  /** 1 for the first key, +1 per rotation (KEY-9): an old version is no longer valid. */
  readonly version: number;
  /** When it was issued (injected clock, ms). */
  readonly issued: number;
}

export class VeKeys {
  private readonly entries = new Map<string, VeKeyEntry>();
  private readonly listeners = new Set<(e: VeKeyEntry) => void>();

  /** Installs a new key for `ve`; the previous one, if any, is invalid from now on (KEY-9). */
  install(ve: string, name: string, clef: Clef, key: Key, issued: number): VeKeyEntry {
    const version = (this.entries.get(ve)?.version ?? 0) + 1;
    const e: VeKeyEntry = { ve, name, clef, key, version, issued };
    this.entries.set(ve, e);
    for (const l of this.listeners) l(e);
    return e;
  }

  get(ve: string): VeKeyEntry | undefined {
    return this.entries.get(ve);
  }

  /** Forgets `ve`'s key (the VE was deleted). */
  remove(ve: string): void {
    this.entries.delete(ve);
  }

  /** Called on every install (a rotation included); returns the unsubscribe function. */
  onInstall(listener: (e: VeKeyEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
