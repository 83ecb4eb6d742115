/**
 * `clefnet`: the testbed's command (`npm run clefnet -- <command>`, or `bin/clefnet`).
 *
 *   clefnet up [topology.yaml] [--data DIR] [--foreground]
 *   clefnet down | status
 *   clefnet publish <module | file.clfx>
 *   clefnet deploy <module> <anc>/<ve>
 *   clefnet send <anc> [--count N] [--flows F] [--text T]
 *   clefnet logs [service] [-n LINES]
 *   clefnet events [service...] [--type protocol,machine,...] [--kind trap,dtm,console,...]
 *
 * `npm start` is `clefnet up --foreground`: the testbed runs until Ctrl-C. The data folder is
 * `./data` unless `--data` or CLEFNET_DATA says otherwise.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ClefnetError } from '@clefnet/protocol';
import { deploy, down, events, logs, publish, send, status, up } from './commands.js';

const USAGE = `usage: clefnet <command> [options]
  up [topology.yaml] [--foreground]   provision and start the testbed (default topology: KServ1,
                                      KServ2, AR, ASD, two ANCs each with a firewall VE and a node VE)
  down                                stop every process of the testbed
  status                              each service: pid, URL, readiness; each ANC's VEs
  publish <module | file.clfx>        publish an example module (billing, transformer) or an image
  deploy <module> <anc>/<ve>          steps 1-9: download a published module into a node VE
  send <anc> [--count N] [--flows F] [--text T]
                                      inject IPv4 packets into an ANC and collect what comes out
  logs [service] [-n LINES]           the last lines of the services' logs
  events [service...] [--type T,..] [--kind K,..]
                                      follow the live event stream (Ctrl-C to stop)
options: --data DIR (default ./data, or CLEFNET_DATA)`;

export async function main(
  argv: readonly string[],
  say: (line: string) => void = console.log,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      foreground: { type: 'boolean', default: false },
      count: { type: 'string', default: '10' },
      flows: { type: 'string', default: '2' },
      text: { type: 'string', default: 'hello from clefnet' },
      n: { type: 'string', short: 'n', default: '40' },
      type: { type: 'string' },
      kind: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    say(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const dataDir = resolve(values.data ?? process.env.CLEFNET_DATA ?? 'data');
  const int = (v: string, name: string, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new ClefnetError('CONFIG_INVALID', `--${name} must be 1..${max}`);
    return n;
  };
  switch (command) {
    case 'up': {
      const t0 = Date.now();
      const r = await up({
        dataDir,
        ...(args[0] === undefined ? {} : { topologyFile: resolve(args[0]) }),
        detached: !values.foreground,
        say,
      });
      say(`testbed up in ${Date.now() - t0} ms (data in ${dataDir}); try:`);
      say('  npm run clefnet -- deploy billing anc1/ve1');
      say('  npm run clefnet -- send anc1 --count 5');
      say('  npm run clefnet -- events anc1 --kind console,module,agent');
      say('  npm run clefnet -- status | down');
      if (!values.foreground) return 0;
      say('running in the foreground: Ctrl-C stops it');
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = async () => {
          if (stopping) return;
          stopping = true;
          say('stopping');
          await down(dataDir, say);
          done();
        };
        // `on`, not `once`: Ctrl-C reaches this process twice (from the terminal's process group and
        // relayed by tsx), and a second signal without a handler would kill it halfway through.
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        for (const c of r.children) {
          c.once('exit', (code) => {
            if (!stopping) say(`a service exited (${code}); see npm run clefnet -- logs`);
          });
        }
      });
      return 0;
    }
    case 'down': {
      const n = await down(dataDir, say);
      say(`${n} processes stopped`);
      return 0;
    }
    case 'status': {
      for (const s of await status(dataDir))
        say(
          `${s.key.padEnd(5)} ${s.name.padEnd(24)} pid ${String(s.pid).padEnd(7)} ${s.state.padEnd(9)} ${s.http}${s.detail ? `  ${s.detail}` : ''}`,
        );
      return 0;
    }
    case 'publish': {
      if (args[0] === undefined) throw new ClefnetError('CONFIG_INVALID', 'publish <module | file.clfx>');
      await publish(dataDir, args[0], say);
      return 0;
    }
    case 'deploy': {
      if (args.length !== 2)
        throw new ClefnetError('CONFIG_INVALID', 'deploy <module> <anc>/<ve>, e.g. deploy billing anc1/ve1');
      await deploy(dataDir, args[0]!, args[1]!, say);
      return 0;
    }
    case 'send': {
      if (args[0] === undefined)
        throw new ClefnetError('CONFIG_INVALID', 'send <anc> [--count N] [--flows F] [--text T]');
      const r = await send(
        dataDir,
        args[0],
        {
          count: int(values.count, 'count', 100_000),
          flows: int(values.flows, 'flows', 16),
          text: values.text,
        },
        say,
      );
      return r.received.length === r.sent ? 0 : 1;
    }
    case 'logs':
      say(logs(dataDir, args[0], int(values.n, 'n', 100_000)));
      return 0;
    case 'events': {
      const ac = new AbortController();
      process.on('SIGINT', () => ac.abort());
      await events(
        dataDir,
        args,
        {
          ...(values.type === undefined ? {} : { type: values.type }),
          ...(values.kind === undefined ? {} : { kind: values.kind }),
        },
        (key, e) => say(`${key.padEnd(5)} ${JSON.stringify(e)}`),
        ac.signal,
      );
      return 0;
    }
    default:
      say(USAGE);
      return 2;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/testbed/cli.ts')) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      const msg =
        e instanceof ClefnetError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
      process.stderr.write(`clefnet: ${msg}\n`);
      process.exit(1);
    },
  );
}
