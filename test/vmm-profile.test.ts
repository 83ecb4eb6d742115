/**
 * Guest profile files (BOOT-11, TB-8): a profile on disk boots tinyos in a VE with its own disk
 * file and NVRAM image; bad profiles are refused with CONFIG_INVALID naming the key.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfile, memoryBlockBackend, parseProfile, Vmm, VmmError } from '@clefnet/emulator';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTinyOs, TINYOS_DIR } from '../guests/build.js';

const dir = mkdtempSync(join(tmpdir(), 'clefnet-profile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { rom, disk } = buildTinyOs();
writeFileSync(join(dir, 'tinyos.rom'), rom);
writeFileSync(join(dir, 'disk.img'), disk);

const GOOD = {
  name: 'tinyos-1',
  memory_bytes: 1 << 20,
  boot_rom_image: 'tinyos.rom',
  nvram_image: 'tinyos-1.nvram',
  disk: { device: 'disk.img', protected_blocks: [0] },
  sdt_policy: 'adaptive',
  qpt: true,
  vedt_mode: 'off',
  outward_guard: true,
  interrupt_lookahead: 16,
};

describe('guest profiles', () => {
  it('a profile file boots tinyos with the expected transcript', () => {
    const path = join(dir, 'tinyos-1.json');
    writeFileSync(path, JSON.stringify(GOOD));
    const vmm = new Vmm({ clock: () => Date.UTC(2026, 0, 1), ramBytes: 8 << 20 });
    const ve = vmm.createVe(loadProfile(path));
    expect(vmm.run(ve.id, 2_000_000).reason).toBe('halt');
    expect(ve.vm.console.transcript()).toBe(readFileSync(new URL('expected.txt', TINYOS_DIR), 'utf8'));
    // tinyos is recognised (KNOWN_GUESTS) but the profile asked for the adaptive policy.
    expect(ve.stats().adaptive).toBe(true);
  });

  const BAD: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown key', { ...GOOD, colour: 'blue' }, /colour is not a profile key/],
    ['no name', { ...GOOD, name: undefined }, /name is required/],
    ['memory not a page multiple', { ...GOOD, memory_bytes: 1000 }, /memory_bytes must be/],
    ['a missing ROM file', { ...GOOD, boot_rom_image: 'nope.rom' }, /boot_rom_image cannot be read/],
    ['an unknown policy', { ...GOOD, sdt_policy: 'P4' }, /sdt_policy must be one of P1, P2, P3, adaptive/],
    ['a string for a flag', { ...GOOD, qpt: 'yes' }, /qpt must be true or false/],
    [
      'a lookahead past its range',
      { ...GOOD, interrupt_lookahead: 5000 },
      /interrupt_lookahead must be an integer in 0..4096/,
    ],
    ['a write method without substitution', { ...GOOD, vedt_write: 'trap' }, /need vedt_mode/],
    ['encryption without a key file', { ...GOOD, encryption: {} }, /encryption.key_file is required/],
    [
      'an unknown encryption key',
      { ...GOOD, encryption: { cipher: 'aes' } },
      /encryption.cipher is not a encryption key/,
    ],
    [
      'a passphrase variable that is not set',
      { ...GOOD, encryption: { key_file: 'disk.img', passphrase_env: 'CLEFNET_NO_SUCH_VARIABLE' } },
      /encryption.passphrase_env names CLEFNET_NO_SUCH_VARIABLE, which is not set/,
    ],
    [
      'a mirror of another size',
      { ...GOOD, disk: { start_block: 0, block_count: 100, mirror: { start_block: 100, block_count: 99 } } },
      /disk.mirror.block_count must equal block_count/,
    ],
    [
      'a mirror of a dedicated disk',
      { ...GOOD, disk: { device: 'disk.img', mirror: { start_block: 0, block_count: 1 } } },
      /disk.mirror needs a region/,
    ],
    [
      'a key trap without a Name',
      { ...GOOD, key_trap: { name: 'Not A Name!' } },
      /key_trap.name must be a Name/,
    ],
    ['three NICs', { ...GOOD, nics: 3 }, /nics must be an integer in 1..2/],
    [
      'a modem link without its channel',
      { ...GOOD, dtm_config: { medium: 'modem' } },
      /dtm_config.channel is required for a modem link/,
    ],
    ['a reach list of numbers', { ...GOOD, dtm_config: { reach: [1] } }, /dtm_config.reach must be/],
    [
      'ring applications (not yet honoured)',
      { ...GOOD, ring_apps: [{ ring: 1, image: 'x' }] },
      /ring_apps is not supported/,
    ],
    ['removable boot', { ...GOOD, allow_removable_boot: true }, /allow_removable_boot is not supported/],
    ['a region without a count', { ...GOOD, disk: { start_block: 0 } }, /disk needs device/],
    [
      'bad protected blocks',
      { ...GOOD, disk: { device: 'disk.img', protected_blocks: [-1] } },
      /protected_blocks/,
    ],
    ['not an object', [] as unknown as Record<string, unknown>, /must be a JSON object/],
  ];

  it.each(BAD)('refuses %s with CONFIG_INVALID', (_, doc, message) => {
    let error: unknown;
    try {
      parseProfile(JSON.parse(JSON.stringify(doc)), dir);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(VmmError);
    expect((error as VmmError).code).toBe('CONFIG_INVALID');
    expect((error as VmmError).message).toMatch(message);
  });

  it('empty not-yet keys are accepted; VEDT options are read', () => {
    const p = parseProfile(
      {
        ...GOOD,
        ring_apps: [],
        io_ports: [],
        vedt_mode: 'current-ring',
        vedt_write: 'overwrite',
        vedt_guard: false,
      },
      dir,
    );
    expect(p.vedt).toEqual({ mode: 'current-ring', method: 'overwrite', guard: false });
  });

  it('reads the data-path keys: mirror, encryption, key trap, NICs, DTM port', () => {
    writeFileSync(join(dir, 'a.diskkey'), Uint8Array.of(1, 2, 3));
    process.env.CLEFNET_TEST_PASSPHRASE = 'correct horse';
    const p = parseProfile(
      {
        ...GOOD,
        disk: { start_block: 10, block_count: 100, mirror: { start_block: 200, block_count: 100 } },
        encryption: { key_file: 'a.diskkey', passphrase_env: 'CLEFNET_TEST_PASSPHRASE' },
        key_trap: { name: 've-1.anc1.example', address: 0xfffe0000 },
        nics: 2,
        crypto_device: true,
        dtm_config: {
          medium: 'modem',
          channel: 'firewall',
          mode: 'pass',
          reach: ['firewall'],
          confirm: 'all',
        },
      },
      dir,
    );
    delete process.env.CLEFNET_TEST_PASSPHRASE;
    expect(p.disk).toEqual({
      start: 10,
      count: 100,
      protectedBlocks: [],
      mirror: { start: 200, count: 100 },
    });
    expect(p.encryption).toEqual({
      header: Uint8Array.of(1, 2, 3),
      partition: 'tinyos-1',
      passphrase: 'correct horse',
    });
    expect(p.keyTrap).toEqual({ name: 've-1.anc1.example', address: 0xfffe0000 });
    expect(p.nics).toBe(2);
    expect(p.cryptoDevice).toBe(true);
    // A VE made from it has the crypto device at 0x320 (claim 39), owned by it, with no key loaded.
    const vmm = new Vmm({ clock: () => 0, ramBytes: 8 << 20, disk: memoryBlockBackend(400) });
    const { encryption: _e, keyTrap: _k, ...plain } = p;
    const ve = vmm.createVe(plain);
    expect(ve.vm.crypto?.ports).toEqual([0x320, 0x326]);
    expect(p.dtm).toEqual({
      medium: 'modem',
      channel: 'firewall',
      mode: 'pass',
      confirm: 'all',
      reach: ['firewall'],
    });
  });
});
