/**
 * The process entry every service shares: `<service> <config.json>`. Reads and parses the config
 * (file names relative to its folder), starts the service with pino on stderr, prints where it
 * listens as one JSON line on stdout, and stops gracefully on SIGTERM or SIGINT. A config or start
 * error prints one JSON line on stderr and exits 1; a missing argument prints the usage, exit 2.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ClefnetError } from '@clefnet/protocol';
import { type Logger, pino } from 'pino';
import type { LogLevel } from './config.js';
import type { ListenAddress } from './host.js';

export interface ServiceMain<
  C extends { readonly logLevel: LogLevel; readonly identity: { readonly name: string } },
> {
  /** The service's name in the usage line and the listen line (`keyserver`, `asd`, ...). */
  readonly service: string;
  readonly parseConfig: (doc: unknown, dir: string) => C;
  readonly create: (config: C & { readonly logger: Logger }) => {
    start(): Promise<ListenAddress>;
    stop(): Promise<void>;
  };
}

/** Runs `m` as this process (`argv` as process.argv). */
export function runServiceMain<
  C extends { readonly logLevel: LogLevel; readonly identity: { readonly name: string } },
>(m: ServiceMain<C>, argv: readonly string[] = process.argv): void {
  start(m, argv).catch((e: unknown) => {
    // The log lines before the failure first, so the error is the last line of the log.
    try {
      logDest?.flushSync();
    } catch {
      // stderr closed: nothing to keep in order.
    }
    const out =
      e instanceof ClefnetError
        ? { error: e.code, message: e.message, ...e.meta }
        : { error: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
    process.stderr.write(`${JSON.stringify(out)}\n`);
    process.exit(1);
  });
}

async function start<C extends { readonly logLevel: LogLevel; readonly identity: { readonly name: string } }>(
  m: ServiceMain<C>,
  argv: readonly string[],
): Promise<void> {
  const file = argv[2];
  if (file === undefined) {
    process.stderr.write(`usage: ${m.service} <config.json>\n`);
    process.exit(2);
  }
  const path = resolve(file);
  const config = m.parseConfig(JSON.parse(readFileSync(path, 'utf8')), dirname(path));
  const logger = pino({ level: config.logLevel }, logDestination());
  const service = m.create({ ...config, logger });
  const address = await service.start();
  process.stdout.write(
    `${JSON.stringify({ service: m.service, name: config.identity.name, pid: process.pid, ...address })}\n`,
  );
  const stop = (signal: string) => {
    logger.info({ signal }, 'stopping');
    service.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: e }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** The pino destination of this process, once start() made it. */
let logDest: LogDestination | undefined;

type LogDestination = ReturnType<typeof pino.destination>;

/**
 * Stderr in batches: lines gather in memory and go out in one synchronous write per 4 KiB (a
 * service logs every frame and protocol event at `info`, a dozen lines per message; a write each
 * put a system call on every message's path). A line waits at most {@link LOG_FLUSH_MS}; an
 * exiting process writes what is left (normal exit, process.exit, an uncaught exception). Only a
 * process that dies without exiting (SIGKILL; SIGTERM or SIGINT before start() installed their
 * handlers; running out of memory) can lose up to that interval's lines; its stores never depend
 * on them.
 */
function logDestination(): LogDestination {
  const dest = pino.destination({ dest: 2, sync: true, minLength: 4096 });
  setInterval(() => dest.flush(), LOG_FLUSH_MS).unref();
  process.on('exit', () => {
    try {
      dest.flushSync();
    } catch {
      // stderr already closed: nothing left to write to.
    }
  });
  logDest = dest;
  return dest;
}

/** How long a log line may wait in memory. */
const LOG_FLUSH_MS = 100;
