import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { Hono } from 'hono';
import { createLogger, requestLogger, startServer } from '../dist/index.js';

/** @param {string} url */
function get(url) {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('createLogger', () => {
  it('writes one JSON object per line with time, level and msg', () => {
    const lines = [];
    const log = createLogger({ level: 'info', fields: { service: 'test' }, write: (l) => lines.push(l) });
    log.debug('hidden');
    log.info('hello', { n: 1 });
    log.child({ req: 'abc' }).error('failed', { err: Object.assign(new Error('boom'), { code: 'E_X' }) });
    assert.equal(lines.length, 2);
    const [first, second] = lines.map((l) => JSON.parse(l));
    assert.match(first.time, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual({ ...first, time: undefined }, { time: undefined, level: 'info', msg: 'hello', service: 'test', n: 1 });
    assert.deepEqual(second.err, { name: 'Error', message: 'boom', code: 'E_X' });
    assert.equal(second.req, 'abc');
  });
});

describe('startServer', () => {
  it('finishes in-flight requests on close and then refuses new ones', async () => {
    const lines = [];
    const log = createLogger({ write: (l) => lines.push(JSON.parse(l)) });
    const app = new Hono();
    app.use('*', requestLogger(log));
    app.get('/slow', async (c) => {
      await new Promise((r) => setTimeout(r, 400));
      return c.text('done');
    });
    let closed = false;
    const running = await startServer({
      fetch: app.fetch,
      hostname: '127.0.0.1',
      port: 0,
      log,
      handleSignals: false,
      onClose: async () => {
        closed = true;
      },
    });
    const base = `http://127.0.0.1:${running.port}`;
    const inFlight = get(`${base}/slow`);
    await new Promise((r) => setTimeout(r, 100));
    const closing = running.close();
    await assert.rejects(get(`${base}/slow`), /ECONNREFUSED|ECONNRESET/);
    assert.deepEqual(await inFlight, { status: 200, body: 'done' });
    await closing;
    assert.ok(closed, 'onClose runs after the last request');
    const reqLine = lines.find((l) => l.msg === 'request');
    assert.equal(reqLine?.path, '/slow');
    assert.equal(reqLine?.status, 200);
    assert.equal(typeof reqLine?.duration_ms, 'number');
  });

  it('rejects when the port is taken', async () => {
    const log = createLogger({ write: () => {} });
    const first = await startServer({ fetch: () => new Response('x'), hostname: '127.0.0.1', port: 0, log, handleSignals: false });
    await assert.rejects(
      startServer({ fetch: () => new Response('x'), hostname: '127.0.0.1', port: first.port, log, handleSignals: false }),
      /EADDRINUSE/,
    );
    await first.close();
  });
});
