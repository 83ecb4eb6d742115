/**
 * Builds the example active-network modules for nodeos (docs/nodeos.md) as CLFX images: each
 * source is assembled with origin 0 (a module's addresses are offsets in its own segment), its
 * `.include "abi.inc"` read from this folder, and wrapped with load 0, entry = its label `start`,
 * and its labels as the symbol table.
 *
 *   npx tsx examples/modules/build.ts billing billing.clfx
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { assemble, encodeImage } from '@clefnet/emulator';

/** The example modules. */
export const MODULES = ['billing', 'transformer'] as const;
export type ModuleName = (typeof MODULES)[number];

/** Where the sources and abi.inc are. */
export const MODULES_DIR = new URL('./', import.meta.url);

const source = (name: string): string => readFileSync(new URL(name, MODULES_DIR), 'utf8');

export interface ModuleImageOptions {
  /** The source's name in error messages (default `module.s`). */
  readonly file?: string;
  /** The entry label (default `start`). */
  readonly entry?: string;
  /** Where the body goes in the module's segment: the assembly origin and the image's load (default 0). */
  readonly origin?: number;
}

/**
 * A module image from assembly source (`.include` names read from this folder): the body assembled
 * at `origin` and loaded there, entry at the `entry` label, the labels as symbols.
 */
export function moduleImage(text: string, opts: ModuleImageOptions = {}): Uint8Array {
  const file = opts.file ?? 'module.s';
  const origin = opts.origin ?? 0;
  const r = assemble(text, { origin, include: (path) => source(path), file });
  const label = opts.entry ?? 'start';
  const entry = r.labels.get(label);
  if (entry === undefined) throw new Error(`${file} has no label '${label}'`);
  return encodeImage({ load: origin, entry, bytes: r.bytes, symbols: r.labels });
}

/** The CLFX image of an example module. */
export function buildModule(name: ModuleName): Uint8Array {
  if (!MODULES.includes(name)) throw new RangeError(`no module '${name}' (${MODULES.join(', ')})`);
  return moduleImage(source(`${name}.s`), { file: `${name}.s` });
}

/** The command line: `build.ts <name> <out.clfx>`. Returns the exit code. */
export function main(args: readonly string[], log: (line: string) => void = console.error): number {
  const [name, out] = args;
  if (args.length !== 2 || name === undefined || out === undefined || !MODULES.includes(name as ModuleName)) {
    log(`usage: build.ts <${MODULES.join('|')}> <out.clfx>`);
    return 2;
  }
  const image = buildModule(name as ModuleName);
  writeFileSync(out, image);
  log(`${name}: ${image.length} bytes -> ${out}`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
