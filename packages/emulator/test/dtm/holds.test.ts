/**
 * The hold queue worked by a person while the machine is down (`clefnet-holds`): a DTM holds a
 * transfer in the spool file of the real partition of a disk image; the command lists it, approves
 * it, and the DTM started again delivers it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileBlockBackend } from '../../src/devices/disk.js';
import { formatDisk, partitionOf, readLayout } from '../../src/disk/layout.js';
import { formatRealFs, openRealFs, REAL_FILES } from '../../src/disk/realfs.js';
import { Dtm } from '../../src/dtm/dtm.js';
import { ETHERTYPE_DATAGRAM, veMac } from '../../src/dtm/frame.js';
import { runHoldsCli } from '../../src/dtm/holds-cli.js';
import { openBlockSpool } from '../../src/dtm/spool.js';
import { Vmm } from '../../src/vmm/vmm.js';
import { ether, netVe, received, receiverRom, senderRom } from './net.js';

const dir = mkdtempSync(join(tmpdir(), 'clefnet-holds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const T0 = Date.UTC(2026, 10, 27, 9);
const root = new URL('../../', import.meta.url).pathname;

/** A disk image with the Fig. 5 layout: a real partition whose file system has a 64-sector spool. */
function image(name: string): string {
  const path = join(dir, name);
  const disk = fileBlockBackend(path, 2048);
  const layout = formatDisk(disk, [
    { name: 'real', kind: 'real', start: 1, count: 1023 },
    { name: 'fw', kind: 'firewall', start: 1024, count: 64 },
  ]);
  formatRealFs(partitionOf(disk, layout, 'real')).create(REAL_FILES.spool, 64);
  disk.close();
  return path;
}

function spoolOf(path: string) {
  const disk = fileBlockBackend(path);
  const real = partitionOf(disk, readLayout(disk), 'real');
  return { disk, spool: openBlockSpool(openRealFs(real).region(REAL_FILES.spool)) };
}

/** Boots a machine whose DTM holds everything `a` sends; returns it with its VEs. */
function machine(path: string, frames: Uint8Array[]) {
  const vmm = new Vmm({ clock: () => T0, ramBytes: 16 << 20 });
  const { disk, spool } = spoolOf(path);
  const dtm = new Dtm({ name: 'hub', id: 1, core: vmm.core, spool, clock: () => T0 });
  vmm.addService(() => dtm.service());
  const a = netVe(vmm, 'a', senderRom(frames));
  const b = netVe(vmm, 'b', receiverRom());
  dtm.attach({ name: 'a', nic: a.vm.nic, confirm: 'all' });
  dtm.attach({ name: 'b', nic: b.vm.nic });
  return { vmm, dtm, a, b, disk };
}

function cli(...argv: string[]) {
  let out = '';
  let err = '';
  const code = runHoldsCli(argv, {
    openDisk: (p) => fileBlockBackend(p),
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
  });
  return { code, out, err };
}

describe('clefnet-holds', () => {
  const mail = [
    ether(veMac(2), veMac(1), ETHERTYPE_DATAGRAM, 'mail one'),
    ether(veMac(2), veMac(1), ETHERTYPE_DATAGRAM, 'mail two'),
  ];

  it('lists, approves and rejects held transfers offline; the DTM started again delivers the approved one', () => {
    const path = image('a.img');
    const m = machine(path, mail);
    m.vmm.run(m.a.id, 200_000);
    const ids = m.dtm.transfers('held').map((t) => t.id);
    expect(ids).toHaveLength(2);
    m.disk.close();

    expect(cli(path, 'list')).toEqual({
      code: 0,
      out:
        `${ids[0]}\t2026-11-27T09:00:00.000Z\ta -> b\t1 frame(s), 22 bytes\tconfirm all\n` +
        `${ids[1]}\t2026-11-27T09:00:00.000Z\ta -> b\t1 frame(s), 22 bytes\tconfirm all\n`,
      err: '',
    });
    expect(cli(path, 'approve', String(ids[0]))).toEqual({
      code: 0,
      out: `approved ${ids[0]}: delivered when its DTM runs again\n`,
      err: '',
    });
    expect(cli(path, 'reject', String(ids[1]))).toEqual({ code: 0, out: `rejected ${ids[1]}\n`, err: '' });
    expect(cli(path, 'reject', String(ids[1]))).toEqual({
      code: 1,
      out: '',
      err: `clefnet-holds: DTM_BAD_HOLD: no held transfer ${ids[1]}\n`,
    });
    expect(cli(path, 'list').out).toBe('no transfer is held\n');

    // The machine starts again: its DTM finds the approved transfer and delivers it.
    const again = machine(path, []);
    again.vmm.run(again.a.id, 200_000);
    again.vmm.run(again.b.id, 200_000);
    again.vmm.run(again.b.id, 200_000);
    expect(received(again.b)).toEqual([mail[0]]);
    again.disk.close();
  });

  it('usage errors exit 2; a disk without a layout exits 1', () => {
    expect(cli('x.img', 'approve').code).toBe(2);
    expect(cli('x.img', 'list', '3').code).toBe(2);
    expect(cli('x.img', '--region', 'nonsense', 'list').code).toBe(2);
    const blank = join(dir, 'blank.img');
    fileBlockBackend(blank, 16).close();
    expect(cli(blank, 'list')).toEqual({
      code: 1,
      out: '',
      err: expect.stringMatching(/^clefnet-holds: DISK_CORRUPT: partition-table: /),
    });
  });

  it('runs as a command (a child process)', () => {
    const path = image('b.img');
    const m = machine(path, mail.slice(0, 1));
    m.vmm.run(m.a.id, 200_000);
    const [id] = m.dtm.transfers('held').map((t) => t.id);
    m.disk.close();
    const r = spawnSync(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', 'bin/clefnet-holds.ts', path, 'list'],
      {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${id}\t2026-11-27T09:00:00.000Z\ta -> b\t1 frame(s), 22 bytes\tconfirm all\n`);
    expect(r.status).toBe(0);
  });
});
