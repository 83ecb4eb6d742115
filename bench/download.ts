/**
 * Module downloads across the real services (issue 6): a testbed (`hardened`, node:crypto) of
 * KServ1, KServ2, the ASD, the AR and one ANC as separate processes on loopback, each with its
 * SQLite files; one download = `POST /admin/deploy` at the AR (steps 1-7 with the hand-over, KServ2
 * minting the application's triple) until the ANC's agent has delivered the verified program into
 * the node VE and holds the application's channel (steps 8-9 for the program and the hand-over).
 * Completion is read from the ANC's event stream (`module delivered`, `agent channel`).
 *
 * - latency: one download at a time, p50 and p99;
 * - throughput: several in flight, downloads completed per second;
 * - 1000 downloads of warm-up first (the services reach their steady speed only after about a
 *   thousand), then rounds (each: latency, then throughput); the figures are the rounds' medians;
 * - where the time goes: each process's CPU time per download (/proc/<pid>/stat) in the
 *   throughput phase, and the client's own.
 *
 * The AR runs the `overlapped` step order (M5 with M1; docs/protocol.md says what it costs), the
 * testbed's setting for downloads that must be quick; `CLEFNET_BENCH_STEP_ORDER=published` measures
 * the patent's order instead.
 *
 * The host's own speed moves by a factor of two from minute to minute, and the latency with it:
 * before each round the bench times the bare loop of bench/cpu.ts (bench/_host.ts; warm, the best of
 * three windows, while the services are idle) and prints it beside the round's figures, so a run says
 * whether the host was fast (the loop at about 250-290 MIPS) or slow (about 125-150).
 *
 * Ends with `RESULT p50_ms=... p99_ms=... downloads_per_s=... host_bare_mips=...` (the last: the
 * median of the rounds' bare-loop figures).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, down, events, up } from '../testbed/commands.js';
import { freePortBlock } from '../testbed/ports.js';
import { bareWindow } from './_host.js';

const WARMUP = 1000;
const ROUNDS = 5;
const LATENCY_RUNS = 100;
const IN_FLIGHT = 8;
const THROUGHPUT_RUNS = 300;
/** How long a download may take before the bench calls it lost. */
const WAIT_MS = 30_000;
const TICK_MS = 1000 / 100; // USER_HZ: /proc/<pid>/stat counts in clock ticks

/** utime + stime of a process, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** Counts completed downloads from the ANC's event stream. */
class Completions {
  private modules = 0;
  private channels = 0;
  private waiters: { n: number; resolve: () => void }[] = [];
  private readonly abort = new AbortController();

  get done(): number {
    return Math.min(this.modules, this.channels);
  }

  /** Follows the ANC's event stream (the `clefnet events` code); resolves once it is open. */
  async open(dataDir: string, anc: string): Promise<void> {
    let opened = false;
    void events(
      dataDir,
      [anc],
      { type: 'machine', kind: 'module,agent' },
      (_key, e) => {
        const ev = e.event as { kind: string; action: string };
        if (ev.kind === 'module' && ev.action === 'delivered') this.modules++;
        if (ev.kind === 'agent' && ev.action === 'channel') this.channels++;
        this.waiters = this.waiters.filter((w) => {
          if (this.done < w.n) return true;
          w.resolve();
          return false;
        });
      },
      this.abort.signal,
      () => {
        opened = true;
      },
    ).catch(() => {});
    while (!opened) await new Promise((r) => setTimeout(r, 10));
  }

  /** Resolves when `n` downloads have completed. */
  until(n: number): Promise<void> {
    if (this.done >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      // A download that never completes is an error with the counts, not a silent hang.
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `${n - this.done} download(s) did not complete (modules ${this.modules}, channels ${this.channels})`,
            ),
          ),
        WAIT_MS,
      );
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  close(): void {
    this.abort.abort();
  }
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

export async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'clefnet-bench-download-'));
  const data = join(dir, 'data');
  const file = join(dir, 'topology.yaml');
  const stepOrder = process.env.CLEFNET_BENCH_STEP_ORDER ?? 'overlapped';
  writeFileSync(
    file,
    `profile: hardened\nstepOrder: ${stepOrder}\nbasePort: ${await freePortBlock(5)}\n` +
      'ancs:\n  - name: anc1\n    nodes: [ve1]\n',
  );
  const say = (line: string) => console.log(line);
  say(`hardened, node:crypto, the AR's step order ${stepOrder}`);
  const { state: s } = await up({ dataDir: data, topologyFile: file, detached: true, say: () => {} });
  const url = (k: string) => s.processes.find((p) => p.key === k)!.http;
  const pid = (k: string) => s.processes.find((p) => p.key === k)!.pid;
  const done = new Completions();
  try {
    await done.open(data, 'anc1');
    const deploy = () =>
      api(s, url('ar'), 'POST', '/admin/deploy', {
        module: 'billing',
        anc: 've1.anc1.clefnet.test',
        secApp: 'billing-anc1-ve1.ar.clefnet.test',
      });
    let issued = 0;
    const one = async () => {
      const t0 = performance.now();
      await deploy();
      issued++;
      await done.until(issued);
      return performance.now() - t0;
    };
    for (let i = 0; i < WARMUP; i++) await one();
    // The bare loop reaches its full speed only after several windows (V8 optimises it in steps:
    // about 140 MIPS for the first four or five, then 285 on this host when it is fast).
    for (let i = 0; i < 10; i++) bareWindow();

    const keys = ['ks1', 'ks2', 'asd', 'ar', 'anc1'];
    const cpuNow = () => new Map(keys.map((k) => [k, cpuMs(pid(k))]));
    /** CPU ms per download of each process since `before`, the client's, and their sum. */
    const perDownload = (before: Map<string, number>, self0: NodeJS.CpuUsage, n: number) => {
      const self = process.cpuUsage(self0);
      const rows = keys.map((k) => (cpuMs(pid(k)) - before.get(k)!) / n);
      const client = (self.user + self.system) / 1000 / n;
      return { rows, client, total: rows.reduce((a, ms) => a + ms, 0) + client };
    };

    const inFlight = async (n: number) => {
      const base = issued;
      let next = 0;
      const t0 = performance.now();
      const workers = Array.from({ length: IN_FLIGHT }, async () => {
        while (next < n) {
          next++;
          await deploy();
          issued++;
        }
      });
      await Promise.all(workers);
      await done.until(base + n);
      return n / ((performance.now() - t0) / 1000);
    };

    // Rounds, each one at a time then in flight; the medians are the figures (this machine's
    // speed drifts by a third from minute to minute).
    const rounds: {
      p50: number;
      p99: number;
      rate: number;
      latCpu: ReturnType<typeof perDownload>;
      tpCpu: ReturnType<typeof perDownload>;
      host: number;
    }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const host = Math.max(bareWindow(), bareWindow(), bareWindow());
      const lat: number[] = [];
      const latCpu0 = cpuNow();
      const latSelf0 = process.cpuUsage();
      for (let i = 0; i < LATENCY_RUNS; i++) lat.push(await one());
      const latCpu = perDownload(latCpu0, latSelf0, LATENCY_RUNS);
      lat.sort((a, b) => a - b);
      const cpu0 = cpuNow();
      const self0 = process.cpuUsage();
      const rate = await inFlight(THROUGHPUT_RUNS);
      const tpCpu = perDownload(cpu0, self0, THROUGHPUT_RUNS);
      const p50 = pct(lat, 50);
      const p99 = pct(lat, 99);
      rounds.push({ p50, p99, rate, latCpu, tpCpu, host });
      say(
        `round ${r + 1} (host: bare loop ${host.toFixed(0)} MIPS): one at a time (${LATENCY_RUNS}) p50 ${p50.toFixed(2)} ms p90 ${pct(lat, 90).toFixed(2)} ms p99 ${p99.toFixed(2)} ms; ${IN_FLIGHT} in flight (${THROUGHPUT_RUNS}) ${rate.toFixed(1)}/s`,
      );
    }
    const median = <T>(xs: T[], by: (x: T) => number) =>
      [...xs].sort((a, b) => by(a) - by(b))[Math.floor(xs.length / 2)]!;
    const mid = median(rounds, (x) => x.rate);
    const p50 = median(rounds, (x) => x.p50).p50;
    const p99 = median(rounds, (x) => x.p99).p99;
    say(`CPU ms per download (the median round by rate)   one at a time   in flight`);
    const row = (name: string, a: number, b: number, note = '') =>
      say(`  ${name.padEnd(46)} ${a.toFixed(2).padStart(6)}      ${b.toFixed(2).padStart(6)}${note}`);
    for (const [i, k] of keys.entries()) row(k, mid.latCpu.rows[i]!, mid.tpCpu.rows[i]!);
    row('client', mid.latCpu.client, mid.tpCpu.client, '  (this process: HTTP requests, the event stream)');
    row(
      'total',
      mid.latCpu.total,
      mid.tpCpu.total,
      `  (2 cores: at most ${((2 * 1000) / mid.tpCpu.total).toFixed(0)}/s)`,
    );
    console.log(
      `RESULT p50_ms=${p50.toFixed(2)} p99_ms=${p99.toFixed(2)} downloads_per_s=${mid.rate.toFixed(1)} ` +
        `host_bare_mips=${median(rounds, (x) => x.host).host.toFixed(0)}`,
    );
  } finally {
    done.close();
    await down(data, () => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
