/**
 * The machine's secret key in NVRAM (KEY-1..4, KEY-10, claim 29, TB-11): the machine triple
 * {Name-M, Clef-M, Key-M} is installed into the real machine's NVRAM image at installation time
 * (KEY-2, BOOT-15 step 5), read once by the VM manager at boot through the NVRAM's ports (real
 * ring 0), and then hidden and write-locked until the next machine reset (KEY-4), so that nothing
 * that runs later, in any ring, can read or change it. Before that, the processor's rules already
 * keep rings 2 and 3 away from it: the VM manager runs every VE with real IOPL <= 1 and a task-state
 * segment without an I/O permission bitmap, so any IN/OUT from real ring 2 or 3 is #GP (claim 29:
 * "accessible from real rings 0 and 1 only"); a VE's own IN/OUT reach its own virtual NVRAM.
 *
 * Layout in the NVRAM (bytes MACHINE_KEY_AT..MACHINE_KEY_AT + MACHINE_KEY_BYTES):
 * `"CLMK" ‖ name length u8 ‖ name (ASCII, at most 55 bytes) ‖ zero padding ‖ Key-M (64 bytes: the
 * Ed25519 seed, then the X25519 secret)` — Clef-M is derived from Key-M.
 */
import { type Clef, type CryptoBackend, clefOf, type Key, type Name, parseName } from '@clefnet/protocol';
import { NVRAM_LOCK, NVRAM_PORT } from '../devices/nvram.js';
import type { Machine } from '../machine.js';
import { VmmError } from './errors.js';

export const MACHINE_KEY_AT = 0x80;
export const MACHINE_KEY_BYTES = 128;
const MAGIC = [0x43, 0x4c, 0x4d, 0x4b]; // "CLMK"
const NAME_MAX = 55;
const KEY_AT = MACHINE_KEY_BYTES - 64;

export interface MachineTriple {
  readonly name: Name;
  readonly clef: Clef;
  readonly key: Key;
}

/**
 * Installation (KEY-2): the machine triple into an NVRAM image (at least 256 bytes), returned as a
 * new image. A provisioning step, done before the machine boots.
 */
export function installMachineKey(image: Uint8Array, name: Name, key: Key): Uint8Array {
  if (image.length < MACHINE_KEY_AT + MACHINE_KEY_BYTES) {
    throw new VmmError('CONFIG_INVALID', `an NVRAM of ${image.length} bytes has no room for the machine key`);
  }
  const n = new TextEncoder().encode(parseName(name));
  if (n.length > NAME_MAX) throw new VmmError('CONFIG_INVALID', `machine name longer than ${NAME_MAX} bytes`);
  if (key.sign.length !== 32 || key.open.length !== 32)
    throw new VmmError('CONFIG_INVALID', 'Key-M is two 32-byte secrets');
  const out = new Uint8Array(image);
  const at = MACHINE_KEY_AT;
  out.fill(0, at, at + MACHINE_KEY_BYTES);
  out.set(MAGIC, at);
  out[at + 4] = n.length;
  out.set(n, at + 5);
  out.set(key.sign, at + KEY_AT);
  out.set(key.open, at + KEY_AT + 32);
  return out;
}

/**
 * Boot (the VM manager in real ring 0): reads the machine triple through the real NVRAM's ports,
 * then hides and write-locks its bytes until the next reset. Throws CONFIG_INVALID when no machine
 * key was installed (or it was already hidden: it is read once per boot).
 */
export function bootMachineKey(machine: Machine, backend: CryptoBackend): MachineTriple {
  const base = machine.nvram.ports[0];
  const io = machine.io;
  const bytes = new Uint8Array(MACHINE_KEY_BYTES);
  io.write(base + NVRAM_PORT.INDEX, MACHINE_KEY_AT);
  for (let i = 0; i < MACHINE_KEY_BYTES; i++) bytes[i] = io.read(base + NVRAM_PORT.DATA_NEXT) & 0xff;
  io.write(base + NVRAM_PORT.LOCK_START, MACHINE_KEY_AT);
  io.write(base + NVRAM_PORT.LOCK_END, MACHINE_KEY_AT + MACHINE_KEY_BYTES);
  io.write(base + NVRAM_PORT.LOCK, NVRAM_LOCK.WRITE_LOCK | NVRAM_LOCK.HIDE);
  if (!MAGIC.every((m, i) => bytes[i] === m)) {
    throw new VmmError(
      'CONFIG_INVALID',
      'no machine key is installed in NVRAM (or it is hidden until reset)',
    );
  }
  const len = bytes[4]!;
  let name: Name;
  try {
    if (len > NAME_MAX) throw new Error('name too long');
    name = parseName(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(5, 5 + len)));
  } catch {
    throw new VmmError('CONFIG_INVALID', 'the machine key in NVRAM has a malformed name');
  }
  const key: Key = { sign: bytes.slice(KEY_AT, KEY_AT + 32), open: bytes.slice(KEY_AT + 32, KEY_AT + 64) };
  bytes.fill(0);
  return { name, key, clef: clefOf(backend, key) };
}
