// The built server (build/server/index.js) answering requests, with a stand-in
// API on a loopback port, or with no API at all.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { createRequestHandler } from 'react-router';
import { freePort } from '../../../test/support/postgres.mjs';

const build = await import('../build/server/index.js');
const handle = createRequestHandler(build, 'production');
const page = (path, init) => handle(new Request(`http://board.test${path}`, init));

// Stand-in API: answers like @board/api, or with `override` when set.
let override;
const fakeApi = createServer((req, res) => {
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (override) return send(override, { error: 'boom' });
  if (req.url === '/api/boards') return send(200, [{ slug: 'general', title: 'General', description: 'Talk', postCount: 1 }]);
  if (req.url === '/api/categories') return send(200, [{ slug: 'help', name: 'Help', description: 'Q&A', order: 1 }]);
  if (req.url === '/api/boards/general/posts') {
    return send(200, { board: { slug: 'general', title: 'General', description: 'Talk' }, posts: [{ id: 1, author: 'ann', body: 'Hi there', createdAt: new Date().toISOString() }] });
  }
  return send(404, { error: 'no such board' });
});
let apiUrl;

before(async () => {
  const port = await freePort();
  await new Promise((resolve) => fakeApi.listen(port, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${port}`;
});
after(() => fakeApi.close());

test('/ lists boards and categories from the API, with hydration scripts and hashed assets', async () => {
  process.env.API_BASE_URL = apiUrl;
  override = undefined;
  const res = await page('/');
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /<a href="\/b\/general"[^>]*>General<\/a>/);
  assert.match(html, /<strong>Help<\/strong>/);
  assert.match(html, /<script>[^<]*window\.__reactRouterContext/, 'inline hydration script');
  const entry = html.match(/\/assets\/entry\.client-[\w-]+\.js/)?.[0];
  assert.ok(entry, 'links the client entry');
  assert.ok(existsSync(new URL(`../build/client${entry}`, import.meta.url)), `${entry} is in build/client`);
});

test('/b/:slug shows the posts, a like button and the post form', async () => {
  process.env.API_BASE_URL = `${apiUrl}/`;
  override = undefined;
  const res = await page('/b/general');
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /Hi there/);
  assert.match(html, /Like \(<!-- -->0<!-- -->\)/);
  assert.match(html, /<form [^>]*method="post"/);
});

test('an unreachable API is a 503 page with a readable message, and the server keeps serving', async () => {
  process.env.API_BASE_URL = `http://127.0.0.1:${await freePort()}`;
  for (const path of ['/', '/b/general']) {
    const res = await page(path);
    assert.equal(res.status, 503, path);
    assert.equal(res.headers.get('retry-after'), '30', path);
    const html = await res.text();
    assert.match(html, /<h1>Service unavailable<\/h1>/, path);
    assert.match(html, /The board API cannot be reached right now/, path);
  }
  process.env.API_BASE_URL = apiUrl;
  assert.equal((await page('/')).status, 200);
});

test('an API answering 503 is a 503 page; any other API error is a 502', async () => {
  process.env.API_BASE_URL = apiUrl;
  override = 503;
  assert.equal((await page('/')).status, 503);
  override = 500;
  const res = await page('/');
  assert.equal(res.status, 502);
  assert.match(await res.text(), /unusable response \(HTTP 500\)/);
  override = undefined;
});

test('an unknown board and an unknown page are 404 pages', async () => {
  process.env.API_BASE_URL = apiUrl;
  const board = await page('/b/nope');
  assert.equal(board.status, 404);
  assert.match(await board.text(), /There is no board called &quot;nope&quot;/);
  const other = await page('/nowhere');
  assert.equal(other.status, 404);
  assert.match(await other.text(), /<h1>Not found<\/h1>/);
});

test('a missing API_BASE_URL says so', async () => {
  delete process.env.API_BASE_URL;
  const res = await page('/');
  assert.equal(res.status, 500);
  assert.match(await res.text(), /API_BASE_URL is not set/);
});
