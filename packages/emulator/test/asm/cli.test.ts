/** clefnet-asm: in-process through runCli with an in-memory file system, and once as a real process. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, USAGE } from '../../src/asm/cli.js';
import { decodeImage } from '../../src/asm/image.js';

function fakeIo(files: Record<string, string>) {
  const written = new Map<string, Uint8Array>();
  const out: string[] = [];
  const err: string[] = [];
  return {
    written,
    out,
    err,
    io: {
      readText: (p: string) => {
        const f = files[p];
        if (f === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
        return f;
      },
      writeFile: (p: string, d: Uint8Array) => void written.set(p, d),
      stdout: (t: string) => void out.push(t),
      stderr: (t: string) => void err.push(t),
    },
  };
}

const BOOT = ['.org 0x7c00', 'start: mov eax, N', '.l: jmp .l', 'msg: .asciz "0123456789"'].join('\n');
const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('hex');

describe('runCli', () => {
  it('writes the raw bytes, next to the input by default', () => {
    const f = fakeIo({ 'src/boot.s': BOOT });
    expect(runCli(['src/boot.s', '-D', 'N=0x10'], f.io)).toBe(0);
    expect(hex(f.written.get('src/boot.bin'))).toBe(
      `1100000010000000${'50000000087c0000'}${'30313233343536373839'}00`,
    );
    expect([f.out, f.err]).toEqual([[], []]);
  });

  it('writes a CLFX image with the entry label and symbols', () => {
    const f = fakeIo({ 'boot.s': BOOT });
    expect(
      runCli(['boot.s', '-o', 'boot.clfx', '--image', '--entry', 'start.l', '--symbols', '-D', 'N=1'], f.io),
    ).toBe(0);
    const img = decodeImage(f.written.get('boot.clfx')!);
    expect([img.load, img.entry, img.bytes.length]).toEqual([0x7c00, 0x7c08, 27]);
    expect([...img.symbols]).toEqual([
      ['start', 0x7c00],
      ['start.l', 0x7c08],
      ['msg', 0x7c10],
    ]);
    expect(runCli(['boot.s', '--image', '--origin', '0x100', '-D', 'N=1'], f.io)).toBe(0);
    expect(decodeImage(f.written.get('boot.bin')!).entry).toBe(0x100);
  });

  it('prints a listing', () => {
    const f = fakeIo({ 'boot.s': BOOT });
    expect(runCli(['boot.s', '--listing', '-D', 'N=-1'], f.io)).toBe(0);
    expect(f.out.join('')).toBe(
      [
        '00007c00  11 00 00 00 ff ff ff ff  boot.s:2  start: mov eax, N',
        '00007c08  50 00 00 00 08 7c 00 00  boot.s:3  .l: jmp .l',
        '00007c10  30 31 32 33 34 35 36 37  boot.s:4  msg: .asciz "0123456789"',
        '00007c18  38 39 00',
        '',
        '00007c00  start',
        '00007c08  start.l',
        '00007c10  msg',
        '',
      ].join('\n'),
    );
  });

  it('resolves .include relative to the including file', () => {
    const f = fakeIo({
      'os/main.s': '.include "lib/a.s"\n.dword A + B',
      'os/lib/a.s': 'A equ 1\n.include "b.s"',
      'os/lib/b.s': 'B equ 2',
    });
    expect(runCli(['os/main.s', '-o', 'o.bin'], f.io)).toBe(0);
    expect(hex(f.written.get('o.bin'))).toBe('03000000');
  });

  it('prints file:line: message and exits 2 on an assembler error', () => {
    const f = fakeIo({ 'boot.s': 'nop\nmvo eax, 1' });
    expect(runCli(['boot.s'], f.io)).toBe(2);
    expect(f.err).toEqual(["boot.s:2: unknown mnemonic 'mvo'\n"]);
    expect(f.written.size).toBe(0);
  });

  it('exits 2 with a one-line reason on usage and I/O errors', () => {
    const cases: [string[], string][] = [
      [[], `clefnet-asm: no input file\n${USAGE}`],
      [['a.s', 'b.s'], `clefnet-asm: a second input 'b.s'\n${USAGE}`],
      [['a.s', '-x'], `clefnet-asm: unknown option '-x'\n${USAGE}`],
      [['a.s', '-o'], `clefnet-asm: -o needs a value\n${USAGE}`],
      [['a.s', '-D', 'X'], `clefnet-asm: -D needs NAME=number\n${USAGE}`],
      [['a.s', '--origin', 'z'], `clefnet-asm: --origin needs a number, got 'z'\n${USAGE}`],
      [['a.s', '--entry', 'start'], `clefnet-asm: --entry and --symbols need --image\n${USAGE}`],
      [['a.s', '--image', '--entry', 'nope'], "clefnet-asm: unknown entry label 'nope'\n"],
      [['missing.s'], "clefnet-asm: ENOENT: no such file or directory, open 'missing.s'\n"],
    ];
    for (const [argv, message] of cases) {
      const f = fakeIo({ 'a.s': 'nop' });
      expect(runCli(argv, f.io), argv.join(' ')).toBe(2);
      expect(f.err.join(''), argv.join(' ')).toBe(message);
    }
  });
});

describe('bin/clefnet-asm.ts', () => {
  it('runs as a process: writes the file, and exits 2 with file:line on an error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clefnet-asm-'));
    try {
      const bin = new URL('../../bin/clefnet-asm.ts', import.meta.url).pathname;
      const tsx = new URL('../../../../node_modules/.bin/tsx', import.meta.url).pathname;
      writeFileSync(join(dir, 'ok.s'), 'hlt\n');
      writeFileSync(join(dir, 'bad.s'), '\njmpf 0x10000:0\n');
      execFileSync(tsx, ['--conditions=source', bin, join(dir, 'ok.s'), '-o', join(dir, 'ok.bin')]);
      expect(hex(readFileSync(join(dir, 'ok.bin')))).toBe('0200000000000000');
      const r = spawnSync(tsx, ['--conditions=source', bin, 'bad.s'], { cwd: dir, encoding: 'utf8' });
      expect([r.status, r.stderr]).toEqual([2, 'bad.s:2: selector 0x10000 out of range (0x0..0xffff)\n']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
