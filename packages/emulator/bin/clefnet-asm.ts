#!/usr/bin/env -S tsx --conditions=source
/** The `clefnet-asm` command: {@link runCli} on the real file system and streams. */
import { readFileSync, writeFileSync } from 'node:fs';
import { runCli } from '../src/asm/cli.js';

process.exitCode = runCli(process.argv.slice(2), {
  readText: (path) => readFileSync(path, 'utf8'),
  writeFile: (path, data) => writeFileSync(path, data),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
