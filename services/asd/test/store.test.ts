/**
 * The SQLite store and the config file: schema version, a newer schema refused untouched, corrupt
 * rows as STORE_CORRUPT, revocations keeping their first time; config fields checked.
 */
import { join } from 'node:path';
import { accessPairToJson, tripleToJson, utf8 } from '@clefnet/protocol';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DB_FILE, openSqliteAsdStore, parseConfig } from '../src/index.js';
import { N, TOKEN, TRIPLES, tempDir } from './helpers.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

function dbPath(): string {
  const dir = tempDir();
  cleanup.push(dir.remove);
  return join(dir.path, DB_FILE);
}

describe('SQLite store', () => {
  it('is at schema version 1 in WAL mode and counts records per application', () => {
    const path = dbPath();
    const store = openSqliteAsdStore(path);
    cleanup.push(() => store.close());
    expect(store.version).toBe(1);
    expect(store.transaction(() => store.append(N.billing, utf8('a'), 5))).toBe(1);
    expect(store.append(N.billing, utf8('b'), 6)).toBe(2);
    expect(store.append(TRIPLES.other.name, utf8('c'), 7)).toBe(1);
    expect(store.records(N.billing).map((r) => r.id)).toEqual([1, 2]);
    expect(store.revoke(N.billing, 10)).toEqual({ app: N.billing, revokedAt: 10 });
    expect(store.revoke(N.billing, 20)).toEqual({ app: N.billing, revokedAt: 10 });
    expect(() =>
      store.transaction(() => {
        store.append(N.billing, utf8('x'), 8);
        throw new Error('rolled back');
      }),
    ).toThrow('rolled back');
    expect(store.count(N.billing)).toBe(2);
    store.close();
    const db = new Database(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('refuses a newer schema untouched, and reads a corrupt row as STORE_CORRUPT', () => {
    const path = dbPath();
    openSqliteAsdStore(path).close();
    const db = new Database(path);
    db.prepare("INSERT INTO records (app, data, received_at) VALUES ('Bad Name', x'00', 1)").run();
    db.close();
    const store = openSqliteAsdStore(path);
    expect(() => store.records()).toThrow(expect.objectContaining({ code: 'STORE_CORRUPT' }));
    store.close();
    const db2 = new Database(path);
    db2.pragma('user_version = 7');
    db2.close();
    expect(() => openSqliteAsdStore(path)).toThrow(expect.objectContaining({ code: 'STORE_CORRUPT' }));
    const db3 = new Database(path);
    expect(db3.pragma('user_version', { simple: true })).toBe(7);
    db3.close();
  });
});

describe('config file', () => {
  const base = {
    identity: tripleToJson(TRIPLES.asd),
    keyServers: [{ ...accessPairToJson(TRIPLES.ks2), scopes: ['relay'] }],
    dataDir: 'data/asd',
    adminToken: TOKEN,
  };

  it('reads the fields, dataDir relative to the file', () => {
    const c = parseConfig(base, '/etc/clefnet');
    expect(c.identity.name).toBe(N.asd);
    expect(c.keyServers).toEqual([{ name: N.ks2, clef: TRIPLES.ks2.clef, scopes: ['relay'] }]);
    expect(c.dataDir).toBe('/etc/clefnet/data/asd');
    expect(c.profile).toBe('patent');
  });

  it('refuses unknown fields, a missing relay and bad values with CONFIG_INVALID', () => {
    const invalid = expect.objectContaining({ code: 'CONFIG_INVALID' });
    expect(() => parseConfig({ ...base, serves: ['relay'] }, '/')).toThrow(invalid);
    expect(() =>
      parseConfig({ ...base, keyServers: [{ ...accessPairToJson(TRIPLES.ks2), scopes: ['clef'] }] }, '/'),
    ).toThrow(invalid);
    expect(() => parseConfig({ ...base, synchronous: 'sometimes' }, '/')).toThrow(invalid);
    expect(() => parseConfig({ ...base, dataDir: undefined }, '/')).toThrow(invalid);
  });
});
