#!/usr/bin/env -S tsx --conditions=source
/** The `clefnet-holds` command: {@link runHoldsCli} on real disk image files. */
import { fileBlockBackend } from '../src/devices/disk.js';
import { runHoldsCli } from '../src/dtm/holds-cli.js';

process.exitCode = runHoldsCli(process.argv.slice(2), {
  openDisk: (path) => fileBlockBackend(path),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
