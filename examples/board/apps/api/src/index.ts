// The API process: reads its environment, listens on HOST:API_PORT, and on
// SIGTERM or SIGINT stops accepting connections, finishes what is in flight,
// closes the database pool and exits 0.
import { connect } from '@board/db';
import { serve } from '@hono/node-server';
import { createApp } from './app.js';
import { log } from './log.js';

const GRACE_MS = 8000;

function readConfig(env: NodeJS.ProcessEnv): { host: string; port: number; databaseUrl: string } {
  const problems: string[] = [];
  const rawPort = env.API_PORT?.trim() ?? '';
  const port = Number(rawPort);
  if (rawPort === '') problems.push('API_PORT is not set (the port this API listens on, e.g. 4000)');
  else if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`API_PORT must be a port number 1-65535, got "${rawPort}"`);
  const databaseUrl = env.DATABASE_URL?.trim() ?? '';
  if (databaseUrl === '') problems.push('DATABASE_URL is not set (postgres://user:password@host:5432/database)');
  else if (!/^postgres(ql)?:\/\//.test(databaseUrl)) problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');
  if (problems.length > 0) {
    process.stderr.write(`api: config error: ${problems.join('; ')}\n`);
    process.exit(1);
  }
  return { host: env.HOST?.trim() || '127.0.0.1', port, databaseUrl };
}

const config = readConfig(process.env);
const database = connect(config.databaseUrl);
const app = createApp({ db: database.db });

const server = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, (info) => {
  log('info', 'listening', { host: config.host, port: info.port });
});
server.on('error', (err) => {
  log('error', 'cannot listen', { host: config.host, port: config.port, error: err.message });
  process.exit(1);
});

let stopping = false;
function shutdown(signal: string): void {
  if (stopping) return;
  stopping = true;
  log('info', 'stopping', { signal });
  const force = setTimeout(() => {
    log('error', 'requests still running after grace period, exiting', { grace_ms: GRACE_MS });
    process.exit(1);
  }, GRACE_MS);
  force.unref();
  server.close(() => {
    database
      .close()
      .then(() => {
        log('info', 'stopped');
        process.exit(0);
      })
      .catch((err: Error) => {
        log('error', 'closing the database pool failed', { error: err.message });
        process.exit(1);
      });
  });
  // Keep-alive connections with no request in flight would hold close() open.
  if ('closeIdleConnections' in server) server.closeIdleConnections();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
