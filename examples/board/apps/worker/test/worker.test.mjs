// The built worker (dist/index.js) as a process, against a real PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '@board/db';
import { freePort, migrate, startPostgres } from '../../../test/support/postgres.mjs';
import { startProcess } from '../../../test/support/process.mjs';

const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const heartbeats = (out) => out.split('\n').filter((l) => l.includes('"msg":"heartbeat"')).length;
let pg;

before(async () => {
  pg = await startPostgres();
  migrate(pg.url);
});

after(() => pg?.stop());

test('writes a worker_heartbeats row every interval, logs JSON lines, stops on SIGTERM with 0', async () => {
  const worker = startProcess([process.execPath, entry], { env: { DATABASE_URL: pg.url, WORKER_INTERVAL_MS: '100' } });
  await worker.waitFor((out) => heartbeats(out) >= 3);
  const { code } = await worker.stop();
  assert.equal(code, 0);

  const lines = worker.output().stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines[0].msg, 'started');
  assert.equal(lines[0].interval_ms, 100);
  assert.equal(lines.at(-1).msg, 'stopped');
  const logged = lines.filter((l) => l.msg === 'heartbeat');

  const conn = connect(pg.url);
  try {
    const { rows } = await conn.pool.query('select id from worker_heartbeats order by id');
    assert.deepEqual(rows.map((r) => Number(r.id)), logged.map((l) => l.id));
  } finally {
    await conn.close();
  }
});

test('exits 1 once the database has been unreachable for longer than WORKER_MAX_OUTAGE_MS', async () => {
  const dead = `postgres://board:x@127.0.0.1:${await freePort()}/postgres`;
  const started = Date.now();
  const worker = startProcess([process.execPath, entry], { env: { DATABASE_URL: dead, WORKER_INTERVAL_MS: '100', WORKER_MAX_OUTAGE_MS: '500' } });
  const { code } = await worker.exited;
  assert.equal(code, 1);
  assert.ok(Date.now() - started < 5000);
  const { stdout } = worker.output();
  assert.match(stdout, /"msg":"heartbeat failed"/);
  assert.match(stdout, /"msg":"database unreachable for too long, exiting"/);
});

test('a missing DATABASE_URL or a bad interval is a one-line config error', async () => {
  const worker = startProcess([process.execPath, entry], { env: { DATABASE_URL: '', WORKER_INTERVAL_MS: 'soon' } });
  const { code } = await worker.exited;
  assert.equal(code, 1);
  assert.equal(
    worker.output().stderr,
    'worker: config error: DATABASE_URL is not set (postgres://user:password@host:5432/database); WORKER_INTERVAL_MS must be a positive whole number of milliseconds, got "soon"\n',
  );
});
