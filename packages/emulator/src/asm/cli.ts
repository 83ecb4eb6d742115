/**
 * `clefnet-asm input.s [-o out.bin] [--image [--entry label|addr] [--symbols]] [--listing]
 * [--origin addr] [-D NAME=value]...`: the command line over {@link assemble}, with its file
 * system and output injected so tests run it in-process. Every failure prints one line on stderr
 * (an assembler error as `file:line: message`) and returns exit status 2.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { type AsmResult, assemble } from './assembler.js';
import { AsmError } from './errors.js';
import { encodeImage } from './image.js';

export interface CliIo {
  readText(path: string): string;
  writeFile(path: string, data: Uint8Array): void;
  stdout(text: string): void;
  stderr(text: string): void;
}

export const USAGE =
  'usage: clefnet-asm input.s [-o out.bin] [--image [--entry label|addr] [--symbols]] [--listing] ' +
  '[--origin addr] [-D NAME=value]...\n';

interface Args {
  input: string;
  output: string;
  image: boolean;
  entry: string | undefined;
  symbols: boolean;
  listing: boolean;
  origin: number | undefined;
  defines: Record<string, number>;
}

class UsageError extends Error {}

const NUMBER = /^(?:0x[0-9a-f]+|[0-9]+)$/i;

function parseArgs(argv: readonly string[]): Args {
  let input: string | undefined;
  let output: string | undefined;
  const a: Omit<Args, 'input' | 'output'> = {
    image: false,
    entry: undefined,
    symbols: false,
    listing: false,
    origin: undefined,
    defines: {},
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '-o') output = value();
    else if (arg === '--image') a.image = true;
    else if (arg === '--entry') a.entry = value();
    else if (arg === '--symbols') a.symbols = true;
    else if (arg === '--listing') a.listing = true;
    else if (arg === '--origin') {
      const v = value();
      if (!NUMBER.test(v)) throw new UsageError(`--origin needs a number, got '${v}'`);
      a.origin = Number(v);
    } else if (arg === '-D') {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(-?(?:0x[0-9a-f]+|[0-9]+))$/i.exec(value());
      if (m === null) throw new UsageError('-D needs NAME=number');
      a.defines[m[1]!] = m[2]!.startsWith('-') ? -Number(m[2]!.slice(1)) : Number(m[2]!);
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option '${arg}'`);
    else if (input === undefined) input = arg;
    else throw new UsageError(`a second input '${arg}'`);
  }
  if (input === undefined) throw new UsageError('no input file');
  if ((a.entry !== undefined || a.symbols) && !a.image)
    throw new UsageError('--entry and --symbols need --image');
  return { ...a, input, output: output ?? `${input.replace(/\.[^./]*$/, '')}.bin` };
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');

/** Address, bytes (8 a row), `file:line` and text of each line that produced bytes; then the labels. */
export function formatListing(r: AsmResult): string {
  const out: string[] = [];
  for (const l of r.lines) {
    const at = l.address - r.origin;
    for (let i = 0; i < Math.max(l.size, 1); i += 8) {
      const row = [...r.bytes.subarray(at + i, at + Math.min(i + 8, l.size))];
      const bytes = row.map((b) => b.toString(16).padStart(2, '0')).join(' ');
      const tail = i === 0 ? `  ${l.file}:${l.line}  ${l.text}` : '';
      out.push(`${hex8(l.address + i)}  ${bytes.padEnd(23)}${tail}`.trimEnd());
    }
  }
  const labels = [...r.labels].sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1));
  if (labels.length > 0) out.push('', ...labels.map(([name, v]) => `${hex8(v)}  ${name}`));
  return `${out.join('\n')}\n`;
}

export function runCli(argv: readonly string[], io: CliIo): number {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr(`clefnet-asm: ${e.message}\n${USAGE}`);
    return 2;
  }
  try {
    const paths = new Map<string, string>([[args.input, args.input]]);
    const include = (path: string, from: string): string => {
      const real = isAbsolute(path) ? path : join(dirname(paths.get(from) ?? from), path);
      paths.set(path, real);
      return io.readText(real);
    };
    const source = io.readText(args.input);
    const r = assemble(source, {
      file: args.input,
      include,
      defines: args.defines,
      ...(args.origin === undefined ? {} : { origin: args.origin }),
    });
    let out = r.bytes;
    if (args.image) {
      const e = args.entry;
      const entry = e === undefined ? r.origin : NUMBER.test(e) ? Number(e) : r.labels.get(e);
      if (entry === undefined) throw new UsageError(`unknown entry label '${e}'`);
      out = encodeImage({
        load: r.origin,
        entry,
        bytes: r.bytes,
        ...(args.symbols ? { symbols: r.labels } : {}),
      });
    }
    io.writeFile(args.output, out);
    if (args.listing) io.stdout(formatListing(r));
    return 0;
  } catch (e) {
    if (e instanceof AsmError) io.stderr(`${e.message}\n`);
    else io.stderr(`clefnet-asm: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
}
