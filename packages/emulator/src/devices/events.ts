/**
 * A tiny typed event emitter: the named events through which devices reach the world (STYLE, after
 * v86). Listener lists are replaced on `on`/`off`, never mutated, so `emit` iterates without
 * allocating and a listener may unsubscribe while an event is being delivered.
 */
export type Listener<T> = (payload: T) => void;

export class Emitter<E extends { [K in keyof E]: unknown }> {
  private listeners: { [K in keyof E]?: readonly Listener<E[K]>[] } = {};

  /** Subscribes; returns the unsubscribe function. */
  on<K extends keyof E>(event: K, listener: Listener<E[K]>): () => void {
    this.listeners[event] = [...(this.listeners[event] ?? []), listener];
    return () => this.off(event, listener);
  }

  off<K extends keyof E>(event: K, listener: Listener<E[K]>): void {
    const list = this.listeners[event];
    if (list !== undefined) this.listeners[event] = list.filter((l) => l !== listener);
  }

  protected emit<K extends keyof E>(event: K, payload: E[K]): void {
    const list = this.listeners[event];
    if (list === undefined) return;
    for (const l of list) l(payload);
  }
}
