import { join } from 'node:path';
import {
  type Binding,
  ClefnetError,
  decodeClef,
  fromHex,
  KEY_SERVER_STORE_CASES,
  parseName,
  toHex,
} from '@clefnet/protocol';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteKeyServerStore, type SqliteKeyServerStore, StoreError } from '../src/index.js';
import { tempDir } from './helpers.js';

const dirs: { remove: () => void }[] = [];
const stores: SqliteKeyServerStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) d.remove();
});
function freshPath(): string {
  const d = tempDir();
  dirs.push(d);
  return join(d.path, 'sub', 'ks.sqlite');
}
function open(path = freshPath()): SqliteKeyServerStore {
  const s = openSqliteKeyServerStore(path);
  stores.push(s);
  return s;
}

const CLEF_HEX = `${'11'.repeat(32)}${'22'.repeat(32)}`;
const binding = (name: string, owner: string | null = null): Binding => ({
  name: parseName(name),
  clef: decodeClef(fromHex(CLEF_HEX)),
  owner: owner === null ? null : parseName(owner),
  createdAt: 1_767_225_600_000,
  revokedAt: null,
});

describe('KeyServerStore compliance: SQLite store', () => {
  for (const c of KEY_SERVER_STORE_CASES) it(c.name, () => c.run(() => open()));
});

describe('SQLite store: schema and file', () => {
  it('creates its folder, the bindings table at schema version 1, in WAL mode', () => {
    const s = open();
    expect(s.version).toBe(1);
    const db = new Database(s.path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(
      db
        .prepare('SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid')
        .all('bindings')
        .map((r) => Object.values(r as object)),
    ).toEqual([
      ['name', 'TEXT', 1, 1],
      ['clef', 'BLOB', 1, 0],
      ['owner', 'TEXT', 0, 0],
      ['created_at', 'INTEGER', 1, 0],
      ['revoked_at', 'INTEGER', 0, 0],
    ]);
    db.close();
  });

  it('stores exactly the row it was given (Clef as the 64 bytes of encodeClef)', () => {
    const s = open();
    s.put(binding('ve1.anc1.clefnet.test', 'anc1.clefnet.test'));
    s.revoke(parseName('ve1.anc1.clefnet.test'), 1_767_225_601_000);
    const db = new Database(s.path, { readonly: true });
    const rows = db
      .prepare('SELECT name, hex(clef) AS clef, owner, created_at, revoked_at FROM bindings')
      .all();
    expect(rows).toEqual([
      {
        name: 've1.anc1.clefnet.test',
        clef: CLEF_HEX.toUpperCase(),
        owner: 'anc1.clefnet.test',
        created_at: 1_767_225_600_000,
        revoked_at: 1_767_225_601_000,
      },
    ]);
    db.close();
  });

  it('keeps its rows and version when opened again', () => {
    const path = freshPath();
    const a = openSqliteKeyServerStore(path);
    a.put(binding('a.test'));
    a.close();
    expect(a.isOpen).toBe(false);
    const b = open(path);
    expect(b.version).toBe(1);
    expect(b.list().map((x) => [x.name, toHex(x.clef.sign) + toHex(x.clef.seal)])).toEqual([
      ['a.test', CLEF_HEX],
    ]);
  });

  it('refuses a database from a newer schema, leaving it untouched', () => {
    const path = freshPath();
    open(path).close();
    const db = new Database(path);
    db.pragma('user_version = 7');
    db.close();
    const err = (() => {
      try {
        openSqliteKeyServerStore(path);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('STORE_CORRUPT');
    expect((err as StoreError).message).toBe(`${path} has schema version 7; this service knows 1`);
    const check = new Database(path, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(7);
    check.close();
  });
});

describe('SQLite store: transactions', () => {
  it('commits what the function did when it returns', () => {
    const s = open();
    const result = s.transaction(() => {
      s.put(binding('a.test'));
      return 42;
    });
    expect(result).toBe(42);
    expect(s.list().map((b) => b.name)).toEqual(['a.test']);
  });

  it('rolls back every change when the function throws, and rethrows', () => {
    const s = open();
    s.put(binding('keep.test'));
    expect(() =>
      s.transaction(() => {
        s.put(binding('a.test'));
        s.revoke(parseName('keep.test'), 5);
        throw new Error('midway');
      }),
    ).toThrow('midway');
    expect(s.list().map((b) => [b.name, b.revokedAt])).toEqual([['keep.test', null]]);
  });

  it('reads made inside a transaction that rolls back are not kept: get() answers what is stored', () => {
    const s = open();
    s.put(binding('keep.test'));
    expect(s.get(parseName('keep.test'))?.revokedAt).toBeNull();
    expect(s.get(parseName('a.test'))).toBeUndefined();
    expect(() =>
      s.transaction(() => {
        s.put(binding('a.test'));
        s.revoke(parseName('keep.test'), 5);
        // Read back inside: the uncommitted rows.
        expect(s.get(parseName('a.test'))?.name).toBe('a.test');
        expect(s.get(parseName('keep.test'))?.revokedAt).toBe(5);
        throw new Error('midway');
      }),
    ).toThrow('midway');
    expect(s.get(parseName('a.test'))).toBeUndefined();
    expect(s.get(parseName('keep.test'))?.revokedAt).toBeNull();
  });

  it('an inner transaction that rolls back inside one that commits: reads answer what is stored', () => {
    const s = open();
    const name = parseName('a.test');
    s.transaction(() => {
      expect(() =>
        s.transaction(() => {
          s.put(binding('a.test'));
          expect(s.get(name)?.name).toBe('a.test');
          throw new Error('inner');
        }),
      ).toThrow('inner');
      expect(s.get(name)).toBeUndefined();
      s.put(binding('b.test'));
    });
    expect(s.get(name)).toBeUndefined();
    expect(s.list().map((b) => b.name)).toEqual(['b.test']);
  });

  it('a closed store answers no read from memory', () => {
    const s = open();
    s.put(binding('a.test'));
    expect(s.get(parseName('a.test'))?.name).toBe('a.test');
    s.close();
    expect(() => s.get(parseName('a.test'))).toThrow();
  });

  it('a Name read before a write is read again after it (put, revoke)', () => {
    const s = open();
    const name = parseName('a.test');
    expect(s.get(name)).toBeUndefined();
    s.put(binding('a.test', 'owner.test'));
    expect(s.get(name)?.owner).toBe('owner.test');
    s.revoke(name, 7);
    expect(s.get(name)?.revokedAt).toBe(7);
    s.put({ ...binding('a.test'), clef: decodeClef(fromHex('33'.repeat(64))) });
    expect(toHex(s.get(name)!.clef.sign)).toBe('33'.repeat(32));
    expect(s.get(name)?.revokedAt).toBeNull();
  });
});

describe('SQLite store: a corrupt row is a typed error, never a crash', () => {
  const cases: { what: string; sql: string; name: string; column: string }[] = [
    {
      what: 'a Name that is not a Name',
      sql: `INSERT INTO bindings VALUES ('Not A Name', x'${CLEF_HEX}', NULL, 1, NULL)`,
      name: 'Not A Name',
      column: 'name',
    },
    {
      what: 'a Clef of 3 bytes (check constraint bypassed)',
      sql: `INSERT INTO bindings VALUES ('short.test', x'010203', NULL, 1, NULL)`,
      name: 'short.test',
      column: 'clef',
    },
    {
      what: 'an owner that is not a Name',
      sql: `INSERT INTO bindings VALUES ('owned.test', x'${CLEF_HEX}', 'UPPER.case', 1, NULL)`,
      name: 'owned.test',
      column: 'owner',
    },
    {
      what: 'a negative creation time (check constraint bypassed)',
      sql: `INSERT INTO bindings VALUES ('early.test', x'${CLEF_HEX}', NULL, -5, NULL)`,
      name: 'early.test',
      column: 'created_at',
    },
    {
      what: 'a revocation time beyond 2^53 - 1',
      sql: `INSERT INTO bindings VALUES ('late.test', x'${CLEF_HEX}', NULL, 1, 9007199254740993)`,
      name: 'late.test',
      column: 'revoked_at',
    },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const s = open();
      s.put(binding('good.test'));
      const db = new Database(s.path);
      db.pragma('ignore_check_constraints = ON');
      db.exec(c.sql);
      db.close();
      for (const read of [() => s.get(c.name as never), () => s.list()]) {
        let err: unknown;
        try {
          read();
        } catch (e) {
          err = e;
        }
        expect(err, c.what).toBeInstanceOf(StoreError);
        expect(err, c.what).toBeInstanceOf(ClefnetError);
        expect((err as StoreError).code, c.what).toBe('STORE_CORRUPT');
        expect((err as StoreError).meta, c.what).toEqual({ column: c.column, name: c.name });
      }
      expect(s.get(parseName('good.test'))?.name).toBe('good.test');
    });
  }
});
