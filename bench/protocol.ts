/**
 * Protocol benchmark (issue 2): for each crypto backend, signs, verifies, seals and opens per
 * second, and one full in-memory exchange (steps 1-9 with the triple hand-over, `hardened`) in
 * milliseconds. `overhead` = exchange time / time spent inside the crypto backend during the same
 * exchange (measured by timing every backend call of an instrumented run): what the protocol
 * costs beyond its cryptography. Target: overhead <= 1.25.
 */
import {
  type CryptoBackend,
  createWorld,
  generateTriple,
  nobleBackend,
  nodeBackend,
  open,
  parseName,
  seal,
  seededRandom,
  sign,
  verify,
  type World,
} from '@clefnet/protocol';

const PLAINTEXT = new Uint8Array(300).fill(0x5a); // about one envelope
const SIGNED = new Uint8Array(250).fill(0x33);

function rate(fn: () => void, minMs: number): number {
  for (let i = 0; i < 20; i++) fn(); // warm up
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (n * 1000) / elapsed;
}

/** A backend that adds the time spent in every call to `spent`. */
function timed(backend: CryptoBackend, spent: { ns: bigint; calls: number }): CryptoBackend {
  const wrap =
    <A extends unknown[], R>(f: (...a: A) => R) =>
    (...a: A): R => {
      const t = process.hrtime.bigint();
      try {
        return f(...a);
      } finally {
        spent.ns += process.hrtime.bigint() - t;
        spent.calls++;
      }
    };
  return {
    name: backend.name,
    ed25519PublicKey: wrap(backend.ed25519PublicKey.bind(backend)),
    ed25519Sign: wrap(backend.ed25519Sign.bind(backend)),
    ed25519Verify: wrap(backend.ed25519Verify.bind(backend)),
    x25519PublicKey: wrap(backend.x25519PublicKey.bind(backend)),
    x25519: wrap(backend.x25519.bind(backend)),
    sha256: wrap(backend.sha256.bind(backend)),
    hmacSha256: wrap(backend.hmacSha256.bind(backend)),
    hkdfExtract: wrap(backend.hkdfExtract.bind(backend)),
    hkdfExpand: wrap(backend.hkdfExpand.bind(backend)),
    aeadSeal: wrap(backend.aeadSeal.bind(backend)),
    aeadOpen: wrap(backend.aeadOpen.bind(backend)),
  };
}

/** One exchange: steps 1-9 and the hand-over, with a fresh SecApp Name (KServ2 rejects existing ones). */
function exchange(w: World, i: number): void {
  const secApp = parseName(`app${i}.ar.clefnet.test`);
  const before = w.programs.length;
  w.net.post(w.ar.name, w.ar.deploy({ anc: w.names.ve, program: PLAINTEXT, secApp }));
  w.net.run();
  if (w.programs.length !== before + 1 || w.net.errors.length > 0 || w.secApp?.name !== secApp) {
    throw new Error(`exchange ${i} did not complete: ${w.net.errors.map((e) => e.error.code).join(', ')}`);
  }
  w.advance(1);
}

function measureExchange(
  backend: CryptoBackend,
  runs: number,
): { ms: number; cryptoMs: number; calls: number } {
  const w = createWorld({ profile: 'hardened', backend, seed: 'bench' });
  w.issueVeKey();
  for (let i = 0; i < Math.min(20, runs); i++) exchange(w, -1 - i); // warm up
  const start = performance.now();
  for (let i = 0; i < runs; i++) exchange(w, i);
  const ms = (performance.now() - start) / runs;

  const spent = { ns: 0n, calls: 0 };
  const t = createWorld({ profile: 'hardened', backend: timed(backend, spent), seed: 'bench' });
  t.issueVeKey();
  for (let i = 0; i < Math.min(20, runs); i++) exchange(t, -1 - i);
  spent.ns = 0n;
  spent.calls = 0;
  for (let i = 0; i < runs; i++) exchange(t, i);
  return { ms, cryptoMs: Number(spent.ns) / 1e6 / runs, calls: spent.calls / runs };
}

export function main(): void {
  const lines: string[] = [];
  for (const backend of [nodeBackend, nobleBackend]) {
    const random = seededRandom(`bench-${backend.name}`);
    const a = generateTriple(backend, random, parseName('a.bench'));
    const block = sign(backend, a.key, SIGNED);
    const sealed = seal(backend, a.clef, PLAINTEXT, random);
    const minMs = 1000;
    const signPerS = rate(() => sign(backend, a.key, SIGNED), minMs);
    const verifyPerS = rate(() => {
      if (!verify(backend, a.clef, block)) throw new Error('verify failed');
    }, minMs);
    const sealPerS = rate(() => seal(backend, a.clef, PLAINTEXT, random), minMs);
    const openPerS = rate(() => open(backend, a.key, sealed), minMs);
    const runs = backend.name === 'node' ? 300 : 20;
    const ex = measureExchange(backend, runs);
    const overhead = ex.ms / ex.cryptoMs;
    console.log(
      `${backend.name}: sign ${signPerS.toFixed(0)}/s, verify ${verifyPerS.toFixed(0)}/s, ` +
        `seal ${sealPerS.toFixed(0)}/s, open ${openPerS.toFixed(0)}/s (${PLAINTEXT.length}-byte plaintext)`,
    );
    console.log(
      `${backend.name}: exchange ${ex.ms.toFixed(2)} ms over ${runs} runs; ${ex.calls.toFixed(0)} backend calls ` +
        `taking ${ex.cryptoMs.toFixed(2)} ms; overhead ${overhead.toFixed(3)}`,
    );
    lines.push(
      `RESULT backend=${backend.name} sign_per_s=${signPerS.toFixed(0)} verify_per_s=${verifyPerS.toFixed(0)} ` +
        `seal_per_s=${sealPerS.toFixed(0)} open_per_s=${openPerS.toFixed(0)} exchange_ms=${ex.ms.toFixed(3)} ` +
        `overhead=${overhead.toFixed(3)}`,
    );
  }
  for (const l of lines) console.log(l);
}
