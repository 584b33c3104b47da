// Runs the built entry points as child processes, the way the image does,
// against a real PostgreSQL.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createDb } from '@atbb/db';
import { startImpostor } from '../../../test/support/impostor.mjs';
import { freePort, runNode, startService } from '../../../test/support/net.mjs';
import { startPostgres } from '../../../test/support/postgres.mjs';

const SERVER = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const MIGRATE = fileURLToPath(new URL('../dist/migrate.js', import.meta.url));
const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));

const BASE_ENV = {
  FORUM_DID: 'did:plc:testforum',
  PDS_URL: 'http://127.0.0.1:2583',
  OAUTH_PUBLIC_URL: 'https://forum.example.com',
};

/** @type {import('../../../test/support/postgres.mjs').TestPostgres} */
let pg;
let databaseUrl = '';

before(async () => {
  pg = await startPostgres();
  const admin = createDb(pg.url(), { max: 1 });
  await admin.unsafe('create database forum');
  await admin.end();
  databaseUrl = pg.url('forum');
});

after(async () => {
  await pg?.cleanup();
});

/** @param {string} url */
async function getJson(url) {
  const res = await fetch(url);
  return { status: res.status, body: await res.json(), headers: res.headers };
}

describe('migrate entry (dist/migrate.js)', () => {
  it('needs DATABASE_URL only, and says so in one line when it is missing', async () => {
    const r = await runNode(MIGRATE, {});
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'config error: missing required DATABASE_URL\n');
  });

  it('migrates with nothing but DATABASE_URL set, then reports the database up to date', async () => {
    const first = await runNode(MIGRATE, { DATABASE_URL: databaseUrl });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'applied 0001_init.sql\napplied 0002_seed.sql\nmigrate: done (2 applied, 0 already applied)\n');
    const again = await runNode(MIGRATE, { DATABASE_URL: databaseUrl });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /database is up to date \(2 migrations applied\)\nmigrate: done \(0 applied, 2 already applied\)\n$/);
  });

  it('fails with one line, without credentials, when the database is unreachable', async () => {
    const port = await freePort();
    const url = `postgres://atbb:${encodeURIComponent(pg.password)}@127.0.0.1:${port}/forum`;
    const r = await runNode(MIGRATE, { DATABASE_URL: url, DB_WAIT_TIMEOUT: '2' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^migrate error: database unreachable after waiting 2 s: connect ECONNREFUSED 127\.0\.0\.1:\d+\n$/);
    assert.match(r.stdout, /^waiting for database \(0\/2 s\): connect ECONNREFUSED/);
    for (const out of [r.stdout, r.stderr]) {
      assert.ok(!out.includes(pg.password) && !out.includes(encodeURIComponent(pg.password)));
    }
  });
  // Issue 14: with an HTTP server at the database's address the migrator printed nothing for 11 minutes.
  it('exits 1 within seconds, in one line, when the address answers HTTP', { timeout: 30_000 }, async () => {
    const impostor = await startImpostor('http-close');
    const url = `postgres://atbb:${encodeURIComponent(pg.password)}@127.0.0.1:${impostor.port}/forum`;
    const started = Date.now();
    let r;
    try {
      r = await runNode(MIGRATE, { DATABASE_URL: url, DB_WAIT_TIMEOUT: '60' });
    } finally {
      await impostor.close();
    }
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^migrate error: cannot use the database: 127\.0\.0\.1:\d+ answered like an HTTP server, not like PostgreSQL\n$/,
    );
    assert.equal(r.stdout, '');
  });
});

describe('appview server (dist/index.js)', () => {
  it('refuses to start without its configuration, naming every missing variable on one line', async () => {
    const r = await runNode(SERVER, {});
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'config error: missing required DATABASE_URL, FORUM_DID, PDS_URL, OAUTH_PUBLIC_URL\n');
    assert.equal(r.stdout, '');
  });

  it('names a malformed variable without printing its value', async () => {
    const r = await runNode(SERVER, { ...BASE_ENV, DATABASE_URL: databaseUrl, FORUM_DID: 'did:key:zSecretish' });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'config error: FORUM_DID must be a did:plc: or did:web: DID\n');
  });

  it('serves the API, reports database health honestly, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const svc = startService(SERVER, { ...BASE_ENV, DATABASE_URL: databaseUrl, PORT: String(port) });
    await svc.ready;
    const base = `http://127.0.0.1:${port}`;
    try {
      const health = await getJson(`${base}/api/health`);
      assert.equal(health.status, 200);
      assert.deepEqual(health.body, { status: 'ok', database: 'up', version });
      assert.equal(health.headers.get('cache-control'), 'no-store');

      assert.deepEqual((await getJson(`${base}/api/ping`)).body, { pong: true });
      const held = Date.now();
      assert.deepEqual((await getJson(`${base}/api/ping?delay=300`)).body, { pong: true });
      assert.ok(Date.now() - held >= 290, 'delay holds the response open');

      const forum = await getJson(`${base}/api/forum`);
      assert.equal(forum.status, 200);
      assert.equal(forum.body.name, 'atBB Example Forum');
      assert.equal(forum.body.did, 'did:plc:testforum');
      assert.equal(forum.body.$type, 'space.atbb.forum');

      const cats = await getJson(`${base}/api/categories`);
      assert.equal(cats.status, 200);
      assert.deepEqual(cats.body.categories.map((c) => c.slug), ['announcements', 'general', 'help']);

      const missing = await getJson(`${base}/api/does-not-exist`);
      assert.equal(missing.status, 404);
      assert.deepEqual(missing.body, { error: 'not_found', path: '/api/does-not-exist' });

      const meta = await getJson(`${base}/api/oauth/client-metadata.json`);
      assert.equal(meta.body.client_id, 'https://forum.example.com/api/oauth/client-metadata.json');

      // With PostgreSQL stopped, health must say so quickly, and data routes answer 503.
      await pg.stop();
      const started = Date.now();
      const down = await getJson(`${base}/api/health`);
      assert.equal(down.status, 503);
      assert.deepEqual(down.body, { status: 'error', database: 'down', version });
      assert.ok(Date.now() - started < 3000, 'health answers within its timeout');
      assert.equal((await getJson(`${base}/api/forum`)).status, 503);
      assert.equal((await getJson(`${base}/api/ping`)).status, 200, 'ping does no database work');

      // ...and recovers once the database is back, without a restart.
      await pg.start();
      assert.equal((await getJson(`${base}/api/health`)).status, 200);
    } finally {
      const { code } = await svc.stop('SIGTERM');
      assert.equal(code, 0);
    }

    const records = svc.stdout.map((line) => JSON.parse(line));
    for (const r of records) {
      assert.equal(typeof r.time, 'string');
      assert.equal(typeof r.level, 'string');
      assert.equal(typeof r.msg, 'string');
    }
    assert.ok(records.some((r) => r.msg === 'request' && r.path === '/api/health' && r.status === 503));
    assert.equal(records.at(-1)?.msg, 'stopped');
    const all = svc.stdout.join('\n') + svc.stderr.join('');
    assert.ok(!all.includes(pg.password) && !all.includes(encodeURIComponent(pg.password)), 'no credentials in logs');
  });
});

/** A database of its own for a test, created empty. */
async function emptyDatabase(name) {
  const admin = createDb(pg.url(), { max: 1 });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return pg.url(name);
}

describe('health tells the truth about the schema (issue 14)', () => {
  it('answers 503 with the reason while migrations are pending, and 200 once they ran', async () => {
    const url = await emptyDatabase('unmigrated');
    const port = await freePort();
    const svc = startService(SERVER, { ...BASE_ENV, DATABASE_URL: url, PORT: String(port) });
    await svc.ready;
    const base = `http://127.0.0.1:${port}`;
    try {
      const health = await getJson(`${base}/api/health`);
      assert.equal(health.status, 503);
      assert.equal(health.headers.get('cache-control'), 'no-store');
      assert.deepEqual(health.body, {
        status: 'error',
        database: 'up',
        migrations: 'pending',
        reason: '2 of 2 migrations are not applied: run the migrations (the image\'s `migrate` command)',
        version,
      });
      // Data routes say "unavailable, retry" rather than "bug": 503, not 500.
      const forum = await getJson(`${base}/api/forum`);
      assert.equal(forum.status, 503);
      assert.deepEqual(forum.body, { error: 'database_unavailable' });

      const migrated = await runNode(MIGRATE, { DATABASE_URL: url });
      assert.equal(migrated.code, 0, migrated.stderr);
      const after = await getJson(`${base}/api/health`);
      assert.equal(after.status, 200);
      assert.deepEqual(after.body, { status: 'ok', database: 'up', version });
    } finally {
      assert.equal((await svc.stop('SIGTERM')).code, 0);
    }
    const records = svc.stdout.map((line) => JSON.parse(line));
    assert.ok(
      records.some(
        (r) => r.msg === 'health check: migrations pending' && r.level === 'warn' && r.pending === '0001_init.sql, 0002_seed.sql',
      ),
      svc.stdout.join('\n'),
    );
  });

  it('answers 503 when a migration of this build is missing from a migrated database', async () => {
    const url = await emptyDatabase('partly');
    assert.equal((await runNode(MIGRATE, { DATABASE_URL: url })).code, 0);
    const admin = createDb(url, { max: 1 });
    await admin`delete from schema_migrations where name = '0002_seed.sql'`;
    await admin.end();
    const port = await freePort();
    const svc = startService(SERVER, { ...BASE_ENV, DATABASE_URL: url, PORT: String(port) });
    await svc.ready;
    try {
      const health = await getJson(`http://127.0.0.1:${port}/api/health`);
      assert.equal(health.status, 503);
      assert.equal(health.body.migrations, 'pending');
      assert.match(health.body.reason, /^1 of 2 migrations are not applied/);
    } finally {
      await svc.stop('SIGTERM');
    }
  });

  it('answers 503, not 500, when the database rejects the password', async () => {
    const url = `postgres://atbb:wrong-password-123@127.0.0.1:${pg.port}/forum`;
    const port = await freePort();
    const svc = startService(SERVER, { ...BASE_ENV, DATABASE_URL: url, PORT: String(port) });
    await svc.ready;
    const base = `http://127.0.0.1:${port}`;
    try {
      const health = await getJson(`${base}/api/health`);
      assert.equal(health.status, 503);
      assert.deepEqual(health.body, { status: 'error', database: 'down', version });
      for (const route of ['/api/forum', '/api/categories']) {
        const res = await getJson(`${base}${route}`);
        assert.equal(res.status, 503, route);
        assert.deepEqual(res.body, { error: 'database_unavailable' });
      }
    } finally {
      await svc.stop('SIGTERM');
    }
    assert.ok(!svc.stdout.join('').includes('wrong-password-123'));
  });
});
