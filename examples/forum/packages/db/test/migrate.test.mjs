import assert from 'node:assert/strict';
import { appendFile, copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { DEFAULT_MIGRATIONS_DIR, loadMigrations, migrate, MigrationError } from '../dist/index.js';
import { startImpostor, startRelay } from '../../../test/support/impostor.mjs';
import { freePort } from '../../../test/support/net.mjs';
import { startPostgres } from '../../../test/support/postgres.mjs';

/** @type {import('../../../test/support/postgres.mjs').TestPostgres} */
let pg;
/** @type {import('postgres').Sql} */
let admin;
let dbCounter = 0;

/** A fresh, empty database per test keeps the tests independent. */
async function freshDatabase() {
  const name = `t${++dbCounter}`;
  await admin.unsafe(`create database ${name}`);
  return pg.url(name);
}

/** @param {string} url @param {(sql: import('postgres').Sql) => Promise<any>} fn */
async function withSql(url, fn) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * A private copy of the built migrations that a test may edit. It lives in
 * the server's directory, which the harness removes however the run ends.
 */
async function copyOfMigrations() {
  const dir = await mkdtemp(path.join(pg.dir, 'migrations-'));
  for (const f of await readdir(DEFAULT_MIGRATIONS_DIR)) await copyFile(path.join(DEFAULT_MIGRATIONS_DIR, f), path.join(dir, f));
  return dir;
}

before(async () => {
  pg = await startPostgres();
  admin = postgres(pg.url(), { max: 1, onnotice: () => {} });
});

after(async () => {
  await admin?.end({ timeout: 1 });
  await pg?.cleanup();
});

describe('loadMigrations', () => {
  it('reads the built migrations in order with sha256 checksums', async () => {
    const list = await loadMigrations();
    assert.deepEqual(list.map((m) => m.name), ['0001_init.sql', '0002_seed.sql']);
    for (const m of list) assert.match(m.checksum, /^[0-9a-f]{64}$/);
  });

  it('ignores CRLF line endings when hashing', async () => {
    const dir = await copyOfMigrations();
    const [before] = await loadMigrations(dir);
    const file = path.join(dir, '0001_init.sql');
    const { readFile } = await import('node:fs/promises');
    await writeFile(file, (await readFile(file, 'utf8')).replace(/\n/g, '\r\n'));
    const [afterCrlf] = await loadMigrations(dir);
    assert.equal(afterCrlf?.checksum, before?.checksum);
  });

  it('rejects badly named files and duplicate numbers', async () => {
    const dir = await copyOfMigrations();
    await writeFile(path.join(dir, '0002_other.sql'), 'select 1;');
    await assert.rejects(loadMigrations(dir), /share the number 0002/);
    await rm(path.join(dir, '0002_other.sql'));
    await writeFile(path.join(dir, 'extra.sql'), 'select 1;');
    await assert.rejects(loadMigrations(dir), /must be named NNNN_description\.sql/);
  });
});

describe('migrate', () => {
  it('applies every migration once and seeds the forum', async () => {
    const url = await freshDatabase();
    const lines = [];
    const first = await migrate({ databaseUrl: url, log: (l) => lines.push(l) });
    assert.deepEqual(first.applied, ['0001_init.sql', '0002_seed.sql']);
    assert.deepEqual(lines, ['applied 0001_init.sql', 'applied 0002_seed.sql']);

    const second = await migrate({ databaseUrl: url, log: (l) => lines.push(l) });
    assert.deepEqual(second.applied, []);
    assert.deepEqual(second.alreadyApplied, ['0001_init.sql', '0002_seed.sql']);
    assert.equal(lines.at(-1), 'database is up to date (2 migrations applied)');

    await withSql(url, async (sql) => {
      const forums = await sql`select name from forums`;
      assert.deepEqual(forums.map((r) => r.name), ['atBB Example Forum']);
      const cats = await sql`select slug from categories order by sort_order`;
      assert.deepEqual(cats.map((r) => r.slug), ['announcements', 'general', 'help']);
      const history = await sql`select name, checksum, applied_at from schema_migrations order by name`;
      assert.equal(history.length, 2);
      assert.ok(history.every((r) => /^[0-9a-f]{64}$/.test(r.checksum) && r.applied_at instanceof Date));
    });
  });

  it('is safe to run concurrently: every migration applies exactly once', async () => {
    const url = await freshDatabase();
    const runs = await Promise.all(Array.from({ length: 4 }, () => migrate({ databaseUrl: url })));
    const applied = runs.flatMap((r) => r.applied).sort();
    assert.deepEqual(applied, ['0001_init.sql', '0002_seed.sql']);
    await withSql(url, async (sql) => {
      const [{ n }] = await sql`select count(*)::int as n from categories`;
      assert.equal(n, 3);
      const [{ locks }] = await sql`select count(*)::int as locks from pg_locks where locktype = 'advisory'`;
      assert.equal(locks, 0, 'the advisory lock is released');
    });
  });

  it('refuses to run when an applied migration was edited, and changes nothing', async () => {
    const url = await freshDatabase();
    const dir = await copyOfMigrations();
    await migrate({ databaseUrl: url, migrationsDir: dir });
    await appendFile(path.join(dir, '0001_init.sql'), '\ncreate table sneaky (id int);\n');
    await writeFile(path.join(dir, '0003_more.sql'), 'create table more_stuff (id int);');
    await assert.rejects(
      migrate({ databaseUrl: url, migrationsDir: dir }),
      (err) =>
        err instanceof MigrationError &&
        /migration 0001_init\.sql was changed after it was applied \(checksum mismatch\)/.test(err.message),
    );
    await withSql(url, async (sql) => {
      const [{ n }] = await sql`select count(*)::int as n from schema_migrations`;
      assert.equal(n, 2, '0003 must not run after a refused check');
      const [{ t }] = await sql`select to_regclass('more_stuff')::text as t`;
      assert.equal(t, null);
    });
  });

  it('refuses a database that has migrations this build does not know', async () => {
    const url = await freshDatabase();
    const dir = await copyOfMigrations();
    await writeFile(path.join(dir, '0003_newer.sql'), 'create table newer (id int);');
    await migrate({ databaseUrl: url, migrationsDir: dir });
    await assert.rejects(migrate({ databaseUrl: url }), /0003_newer\.sql is recorded as applied but is not in this build/);
  });

  it('rolls a failing migration back entirely', async () => {
    const url = await freshDatabase();
    const dir = await copyOfMigrations();
    await writeFile(path.join(dir, '0003_broken.sql'), 'create table half_done (id int);\nselect no_such_function();\n');
    await assert.rejects(
      migrate({ databaseUrl: url, migrationsDir: dir }),
      /migration 0003_broken\.sql failed and was rolled back: .*no_such_function/,
    );
    await withSql(url, async (sql) => {
      const names = await sql`select name from schema_migrations order by name`;
      assert.deepEqual(names.map((r) => r.name), ['0001_init.sql', '0002_seed.sql']);
      const [{ t }] = await sql`select to_regclass('half_done')::text as t`;
      assert.equal(t, null);
    });
  });

  it('tries once by default and never prints the password', async () => {
    const port = await freePort();
    const url = `postgres://atbb:${encodeURIComponent(pg.password)}@127.0.0.1:${port}/atbb`;
    const lines = [];
    const started = Date.now();
    await assert.rejects(migrate({ databaseUrl: url, log: (l) => lines.push(l) }), (err) => {
      assert.match(err.message, /^database unreachable: .*ECONNREFUSED/);
      assert.ok(!err.message.includes(pg.password) && !err.message.includes(encodeURIComponent(pg.password)));
      return true;
    });
    assert.deepEqual(lines, []);
    assert.ok(Date.now() - started < 3000);
  });

  it('waits for the database with one progress line per attempt, then gives up', async () => {
    const port = await freePort();
    const url = `postgres://atbb:${encodeURIComponent(pg.password)}@127.0.0.1:${port}/atbb`;
    const lines = [];
    await assert.rejects(
      migrate({ databaseUrl: url, waitSeconds: 3, log: (l) => lines.push(l) }),
      /database unreachable after waiting 3 s: .*ECONNREFUSED/,
    );
    assert.ok(lines.length >= 3 && lines.length <= 4, `got ${lines.length} progress lines`);
    for (const l of lines) {
      assert.match(l, /^waiting for database \(\d\/3 s\): connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
      assert.ok(!l.includes(pg.password));
    }
  });

  it('fails fast on a wrong password instead of waiting', async () => {
    const url = `postgres://atbb:wrong-password-123@127.0.0.1:${pg.port}/postgres`;
    const started = Date.now();
    await assert.rejects(migrate({ databaseUrl: url, waitSeconds: 30 }), (err) => {
      assert.match(err.message, /^cannot use the database: password authentication failed for user "atbb"/);
      assert.ok(!err.message.includes('wrong-password-123'));
      return true;
    });
    assert.ok(Date.now() - started < 5000);
  });

  // Issue 14: an HTTP server (or a proxy answering 400) at the database's address made the migrator
  // reconnect forever, with or without DB_WAIT_TIMEOUT. Waiting cannot fix a port that speaks another
  // protocol, so it must fail at once and say what answered.
  for (const behaviour of /** @type {const} */ (['http-close', 'http-keep'])) {
    it(`fails fast when the address answers HTTP instead of PostgreSQL (${behaviour})`, { timeout: 30_000 }, async () => {
      const impostor = await startImpostor(behaviour);
      const url = `postgres://atbb:${encodeURIComponent(pg.password)}@127.0.0.1:${impostor.port}/atbb`;
      const lines = [];
      const started = Date.now();
      try {
        await assert.rejects(migrate({ databaseUrl: url, waitSeconds: 60, log: (l) => lines.push(l) }), (err) => {
          assert.match(
            err.message,
            /^cannot use the database: 127\.0\.0\.1:\d+ answered like an HTTP server, not like PostgreSQL$/,
          );
          assert.ok(!err.message.includes(pg.password));
          return true;
        });
      } finally {
        await impostor.close();
      }
      const took = Date.now() - started;
      assert.ok(took < 10_000, `gave up after ${took} ms`);
      assert.deepEqual(lines, [], 'no waiting: another protocol on the port does not go away');
    });
  }

  it('gives up on a server that accepts and never answers, after the wait', { timeout: 30_000 }, async () => {
    const impostor = await startImpostor('silent');
    const url = `postgres://atbb:${encodeURIComponent(pg.password)}@127.0.0.1:${impostor.port}/atbb`;
    const started = Date.now();
    try {
      await assert.rejects(migrate({ databaseUrl: url, waitSeconds: 3 }), /database unreachable after waiting 3 s: /);
    } finally {
      await impostor.close();
    }
    assert.ok(Date.now() - started < 10_000, `gave up after ${Date.now() - started} ms`);
  });

  it('cancels a statement that runs past the statement timeout, and keeps nothing of it', { timeout: 30_000 }, async () => {
    const url = await freshDatabase();
    const dir = await copyOfMigrations();
    await writeFile(path.join(dir, '0003_slow.sql'), 'create table slow_one (id int);\nselect pg_sleep(30);\n');
    const started = Date.now();
    await assert.rejects(
      migrate({ databaseUrl: url, migrationsDir: dir, statementTimeoutSeconds: 1 }),
      /migration 0003_slow\.sql failed and was rolled back: canceling statement due to statement timeout/,
    );
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
    await withSql(url, async (sql) => {
      const names = await sql`select name from schema_migrations order by name`;
      assert.deepEqual(names.map((r) => r.name), ['0001_init.sql', '0002_seed.sql']);
      const [{ t }] = await sql`select to_regclass('slow_one')::text as t`;
      assert.equal(t, null);
    });
  });

  it('gives up when the database stops answering in the middle of a run', { timeout: 30_000 }, async () => {
    const url = await freshDatabase();
    const relay = await startRelay(pg.port);
    const relayed = url.replace(`@127.0.0.1:${pg.port}/`, `@127.0.0.1:${relay.port}/`);
    const lines = [];
    const started = Date.now();
    try {
      await assert.rejects(
        migrate({
          databaseUrl: relayed,
          statementTimeoutSeconds: 1,
          // After the first file the network goes silent: no answer, no error, no closed connection.
          log: (l) => {
            lines.push(l);
            relay.goQuiet();
          },
        }),
        /migration 0002_seed\.sql failed and was rolled back: no answer from the database within \d+ s$/,
      );
    } finally {
      await relay.close();
    }
    assert.deepEqual(lines, ['applied 0001_init.sql']);
    assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
  });

  it('waits for a database that comes up later', async () => {
    const url = await freshDatabase();
    await pg.stop();
    const lines = [];
    const restart = new Promise((r) => setTimeout(r, 2500)).then(() => pg.start());
    try {
      const result = await migrate({ databaseUrl: url, waitSeconds: 30, log: (l) => lines.push(l) });
      assert.deepEqual(result.applied, ['0001_init.sql', '0002_seed.sql']);
    } finally {
      await restart;
    }
    assert.ok(lines.some((l) => l.startsWith('waiting for database (')), lines.join('\n'));
  });
});
