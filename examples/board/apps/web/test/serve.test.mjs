// The way the image starts the web: `react-router-serve ./build/server/index.js`
// from apps/web, configured by PORT and HOST.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../../test/support/postgres.mjs';
import { startProcess, waitForPort } from '../../../test/support/process.mjs';

const webDir = fileURLToPath(new URL('..', import.meta.url));

test('react-router-serve serves pages and immutable assets from its working directory', async () => {
  const port = await freePort();
  const serve = startProcess([`${webDir}node_modules/.bin/react-router-serve`, './build/server/index.js'], {
    cwd: webDir,
    env: { PORT: String(port), HOST: '127.0.0.1', API_BASE_URL: `http://127.0.0.1:${await freePort()}` },
  });
  try {
    await waitForPort(port);
    const base = `http://127.0.0.1:${port}`;
    const home = await fetch(`${base}/`);
    assert.equal(home.status, 503, 'no API behind it');
    const asset = (await home.text()).match(/\/assets\/entry\.client-[\w-]+\.js/)?.[0];
    assert.ok(asset);
    const js = await fetch(`${base}${asset}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    assert.match(await js.text(), /hydrateRoot|createRoot/);
  } finally {
    const { code } = await serve.stop();
    assert.equal(code, 0, 'SIGTERM is a clean exit');
  }
});
