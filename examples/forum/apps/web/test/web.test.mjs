// Runs the built web entry against a stand-in appview whose behaviour each
// test chooses, to check both the happy page and the honest error pages.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../dist/app.js';
import { freePort, runNode, startService } from '../../../test/support/net.mjs';

const SERVER = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const SECRET = 'test-secret-that-is-long-enough-0123456789';

/** @type {'ok' | 'error' | 'unavailable' | 'garbage' | 'slow'} */
let mode = 'ok';
const appview = createServer((req, res) => {
  if (mode === 'garbage') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('<html>not json</html>');
    return;
  }
  if (mode === 'error') {
    res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"internal_error"}');
    return;
  }
  if (mode === 'unavailable') {
    res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"database_unavailable"}');
    return;
  }
  const bodies = {
    '/api/forum': { did: 'did:plc:testforum', name: 'Test <Forum> & Friends', description: 'Where tests meet.' },
    '/api/categories': {
      categories: [
        { slug: 'general', name: 'General', description: 'Talk about anything.' },
        { slug: 'help', name: 'Help', description: 'Ask <b>here</b>.' },
      ],
    },
  };
  const body = bodies[/** @type {keyof typeof bodies} */ (req.url ?? '')];
  res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? { error: 'not_found' }));
});

let appviewPort = 0;
let web;
let base = '';

before(async () => {
  appviewPort = await freePort();
  await new Promise((r) => appview.listen(appviewPort, '127.0.0.1', () => r(undefined)));
  const port = await freePort();
  web = startService(SERVER, {
    SESSION_SECRET: SECRET,
    OAUTH_PUBLIC_URL: 'http://localhost:8080',
    APPVIEW_URL: `http://127.0.0.1:${appviewPort}`,
    PORT: String(port),
  });
  await web.ready;
  base = `http://127.0.0.1:${port}`;
});

after(async () => {
  await web?.stop();
  appview.closeAllConnections();
  await new Promise((r) => appview.close(() => r(undefined)));
});

describe('web server (dist/index.js)', () => {
  it('renders the forum name and categories, escaped', async () => {
    mode = 'ok';
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const html = await res.text();
    assert.match(html, /<h1>Test &lt;Forum&gt; &amp; Friends<\/h1>/);
    assert.match(html, /<h3>General<\/h3>/);
    assert.match(html, /Ask &lt;b&gt;here&lt;\/b&gt;\./);
    assert.match(html, /href="\/static\/style\.css\?v=[0-9a-f]{12}"/);
  });

  it('starts a signed session cookie on the first visit and keeps it afterwards', async () => {
    mode = 'ok';
    const first = await fetch(`${base}/`);
    const cookie = first.headers.get('set-cookie') ?? '';
    assert.match(cookie, /^atbb_session=[^;]+\.[^;]+; Max-Age=604800; Path=\/; HttpOnly; SameSite=Lax$/);
    const pair = cookie.split(';')[0] ?? '';

    const second = await fetch(`${base}/`, { headers: { cookie: pair } });
    assert.equal(second.headers.get('set-cookie'), null, 'a valid session is reused');

    const [name, value] = pair.split('=');
    const forged = `${name}=${value?.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}`;
    const third = await fetch(`${base}/`, { headers: { cookie: forged } });
    assert.notEqual(third.headers.get('set-cookie'), null, 'a tampered cookie gets a fresh session');
  });

  it('serves static files with immutable caching, and 404s without it', async () => {
    const css = await fetch(`${base}/static/style.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    assert.equal(css.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(await css.text(), /font:/);

    const missing = await fetch(`${base}/static/nope.css`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('cache-control'), null);

    const sneaky = await fetch(`${base}/static/..%2f..%2fpackage.json`);
    assert.equal(sneaky.status, 404);
  });

  // Issue 14: with a wrong database password or no schema the appview failed with 500 and the page
  // answered 502, where the guide promises 503 with Retry-After. Any server error of the API is an
  // outage to retry through, whatever its cause.
  it('503 with Retry-After when the API fails with a server error', async () => {
    mode = 'error';
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '30');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const html = await res.text();
    assert.match(html, /The forum API is unavailable right now \(it answered HTTP 500\)/);
  });

  it('502 when the API answers with something unusable', async () => {
    mode = 'garbage';
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 502);
    assert.equal(res.headers.get('retry-after'), null);
    assert.match(await res.text(), /The forum API is unavailable right now \(it answered with invalid JSON\)/);
  });

  it('503 with Retry-After when the API reports itself unavailable', async () => {
    mode = 'unavailable';
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '30');
    assert.match(await res.text(), /The forum API is unavailable right now/);
  });

  it('404 page for unknown paths', async () => {
    const res = await fetch(`${base}/no/such/page`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /Page not found/);
  });

  it('logs one JSON object per request', () => {
    const records = web.stdout.map((l) => JSON.parse(l));
    assert.ok(records.some((r) => r.msg === 'request' && r.path === '/' && r.status === 200 && r.service === 'web'));
  });
});

describe('web server without an appview', () => {
  it('answers 503 when the appview cannot be reached', async () => {
    const port = await freePort();
    const closedPort = await freePort();
    const svc = startService(SERVER, {
      SESSION_SECRET: SECRET,
      OAUTH_PUBLIC_URL: 'https://forum.example.com',
      APPVIEW_URL: `http://127.0.0.1:${closedPort}`,
      PORT: String(port),
    });
    await svc.ready;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '30');
      assert.match(await res.text(), /The forum API is unavailable right now \(it could not be reached\)\./);
      assert.match(res.headers.get('set-cookie') ?? '', /; Secure/, 'https public URL means Secure cookies');
    } finally {
      assert.equal((await svc.stop('SIGINT')).code, 0);
    }
  });
});

describe('web configuration', () => {
  it('refuses to start without SESSION_SECRET and OAUTH_PUBLIC_URL, in one line', async () => {
    const r = await runNode(SERVER, {});
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'config error: missing required SESSION_SECRET, OAUTH_PUBLIC_URL\n');
  });

  it('rejects a short SESSION_SECRET without printing it', async () => {
    const r = await runNode(SERVER, { SESSION_SECRET: 'tooshort', OAUTH_PUBLIC_URL: 'https://f.example' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^config error: SESSION_SECRET must be at least 32 characters/);
    assert.ok(!r.stderr.includes('tooshort'));
    assert.equal(r.stderr.split('\n').length, 2);
  });

  it('createApp can be used in-process', async () => {
    const app = createApp({
      appviewUrl: `http://127.0.0.1:${appviewPort}`,
      sessionSecret: SECRET,
      sessionTtlDays: 1000,
      secureCookies: false,
      log: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } },
    });
    mode = 'ok';
    const res = await app.request('/');
    assert.equal(res.status, 200);
    // Cookie lifetimes are capped at 400 days whatever the session TTL.
    assert.match(res.headers.get('set-cookie') ?? '', /Max-Age=34560000;/);
  });
});
