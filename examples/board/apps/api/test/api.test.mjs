// The built API (dist/index.js) as a process, against a real PostgreSQL.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, migrate, startPostgres } from '../../../test/support/postgres.mjs';
import { startProcess } from '../../../test/support/process.mjs';

const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
let pg;
let api;
let base;

before(async () => {
  pg = await startPostgres();
  migrate(pg.url);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // Started from another directory: the data folder must be found from the module, not the cwd.
  api = startProcess([process.execPath, entry], { cwd: '/', env: { API_PORT: String(port), DATABASE_URL: pg.url, PORT: '1' } });
  await api.waitFor((out) => out.includes('"msg":"listening"'));
});

after(async () => {
  await api?.stop();
  pg?.stop();
});

test('GET /api/boards lists the seeded boards from the database', async () => {
  const res = await fetch(`${base}/api/boards`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const boards = await res.json();
  assert.deepEqual(boards.map((b) => b.slug), ['general', 'kit']);
  assert.equal(boards[0].title, 'General');
});

test('posts can be listed and added; bad input is a 400, an unknown board a 404', async () => {
  const before = await (await fetch(`${base}/api/boards/kit/posts`)).json();
  assert.equal(before.board.title, 'Deployment kit');
  assert.equal(before.posts.length, 1);

  const created = await fetch(`${base}/api/boards/kit/posts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author: 'test', body: '  second post  ' }),
  });
  assert.equal(created.status, 201);
  assert.equal((await created.json()).body, 'second post');
  const afterPost = await (await fetch(`${base}/api/boards/kit/posts`)).json();
  assert.deepEqual(afterPost.posts.map((p) => p.body), ['second post', 'This board was packaged by atbb.yaml alone.']);

  const empty = await fetch(`${base}/api/boards/kit/posts`, { method: 'POST', body: JSON.stringify({ body: ' ' }) });
  assert.equal(empty.status, 400);
  const notJson = await fetch(`${base}/api/boards/kit/posts`, { method: 'POST', body: 'hello' });
  assert.equal(notJson.status, 400);
  const missing = await fetch(`${base}/api/boards/nope/posts`);
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: 'no such board' });
});

test('GET /api/categories reads apps/api/data/*.json at run time', async () => {
  const res = await fetch(`${base}/api/categories`);
  assert.equal(res.status, 200);
  const categories = await res.json();
  const files = readdirSync(new URL('../data/', import.meta.url)).filter((f) => f.endsWith('.json'));
  assert.equal(categories.length, files.length);
  assert.deepEqual(categories.map((c) => c.slug), ['general', 'help', 'meta'], 'sorted by "order"');
});

test('unknown paths get Hono\'s plain-text 404, under /api/ and outside it', async () => {
  for (const path of ['/api/nope', '/api/health', '/']) {
    const res = await fetch(`${base}${path}`);
    assert.equal(res.status, 404, path);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/, path);
    assert.equal(await res.text(), '404 Not Found', path);
  }
});

test('requests are logged as JSON lines', () => {
  const lines = api.output().stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.msg === 'request' && l.path === '/api/boards' && l.status === 200));
});

test('a database that cannot be reached is a 503, not a crash', async () => {
  const port = await freePort();
  const deadDb = `postgres://board:x@127.0.0.1:${await freePort()}/postgres`;
  const down = startProcess([process.execPath, entry], { env: { API_PORT: String(port), DATABASE_URL: deadDb } });
  try {
    await down.waitFor((out) => out.includes('"msg":"listening"'));
    const res = await fetch(`http://127.0.0.1:${port}/api/boards`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { error: 'database unavailable' });
  } finally {
    await down.stop();
  }
});

test('API_PORT (not PORT) is required, with a clear message', async () => {
  const proc = startProcess([process.execPath, entry], { env: { API_PORT: '', PORT: '4000', DATABASE_URL: pg.url } });
  const { code } = await proc.exited;
  assert.equal(code, 1);
  assert.match(proc.output().stderr, /^api: config error: API_PORT is not set/);
});

test('SIGTERM stops the server, closes the pool and exits 0', async () => {
  const port = await freePort();
  const proc = startProcess([process.execPath, entry], { env: { API_PORT: String(port), DATABASE_URL: pg.url } });
  await proc.waitFor((out) => out.includes('"msg":"listening"'));
  assert.equal((await fetch(`http://127.0.0.1:${port}/api/boards`)).status, 200);
  const { code } = await proc.stop();
  assert.equal(code, 0);
  assert.match(proc.output().stdout, /"msg":"stopped"/);
});
