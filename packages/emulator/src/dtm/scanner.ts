/**
 * Scanners for the spooling DTM (DTM-10): a scanner sees each whole transaction before it is
 * delivered and may refuse it. The testbed ships one that looks for a byte signature (enough to
 * prove the hook, as a virus scanner's simplest rule); real-environment applications can plug in
 * their own.
 */
import type { Scanner } from './dtm.js';

/**
 * Refuses a transaction whose payload, read as one stream across its frames, contains
 * `signature` (a string is taken as its UTF-8 bytes).
 */
export function signatureScanner(signature: Uint8Array | string, label = 'test signature'): Scanner {
  const sig = typeof signature === 'string' ? new TextEncoder().encode(signature) : new Uint8Array(signature);
  if (sig.length === 0) throw new RangeError('an empty signature matches everything');
  return (t) => {
    let total = 0;
    for (const p of t.payloads) total += p.length;
    if (total < sig.length) return undefined;
    const all = new Uint8Array(total);
    let at = 0;
    for (const p of t.payloads) {
      all.set(p, at);
      at += p.length;
    }
    const first = sig[0]!;
    for (let i = all.indexOf(first); i >= 0 && i + sig.length <= total; i = all.indexOf(first, i + 1)) {
      let j = 1;
      while (j < sig.length && all[i + j] === sig[j]) j++;
      if (j === sig.length) return `${label} at byte ${i}`;
    }
    return undefined;
  };
}
