/**
 * The AR process: `node --conditions=source --import tsx services/repository/src/main.ts
 * <config.json>`. Prints where it listens as one JSON line on stdout (logs go to stderr), and
 * stops gracefully on SIGTERM or SIGINT. A config error prints one JSON line on stderr, exit 1.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ClefnetError } from '@clefnet/protocol';
import { pino } from 'pino';
import { parseConfig } from './config.js';
import { createRepositoryService } from './server.js';

async function main(argv: readonly string[]): Promise<void> {
  const file = argv[2];
  if (file === undefined) {
    process.stderr.write('usage: repository <config.json>\n');
    process.exit(2);
  }
  const path = resolve(file);
  const config = parseConfig(JSON.parse(readFileSync(path, 'utf8')), dirname(path));
  const logger = pino({ level: config.logLevel }, pino.destination(2));
  const service = createRepositoryService({ ...config, logger });
  const address = await service.start();
  process.stdout.write(
    `${JSON.stringify({ service: 'repository', name: config.identity.name, pid: process.pid, ...address })}\n`,
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

main(process.argv).catch((e: unknown) => {
  const out =
    e instanceof ClefnetError
      ? { error: e.code, message: e.message, ...e.meta }
      : { error: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
  process.stderr.write(`${JSON.stringify(out)}\n`);
  process.exit(1);
});
