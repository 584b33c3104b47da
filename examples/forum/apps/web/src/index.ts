import { readConfigOrExit } from '@atbb/config';
import { createLogger, startServer } from '@atbb/server';
import { createApp } from './app.js';
import { MemorySessionStore } from './session.js';

// The web app never touches the database; it needs the session secret and
// its public URL, and finds the API through APPVIEW_URL.
const config = readConfigOrExit({
  required: ['SESSION_SECRET', 'OAUTH_PUBLIC_URL'],
  optional: ['APPVIEW_URL', 'SESSION_TTL_DAYS', 'PORT', 'HOST', 'LOG_LEVEL'],
});

const log = createLogger({ level: config.LOG_LEVEL ?? 'info', fields: { service: 'web' } });
const sessionTtlDays = config.SESSION_TTL_DAYS ?? 7;
const sessions = new MemorySessionStore(sessionTtlDays * 86_400_000);
const sweeper = setInterval(() => sessions.sweep(), 10 * 60_000);
sweeper.unref();

const app = createApp({
  appviewUrl: config.APPVIEW_URL ?? 'http://127.0.0.1:3000',
  sessionSecret: config.SESSION_SECRET,
  sessionTtlDays,
  secureCookies: new URL(config.OAUTH_PUBLIC_URL).protocol === 'https:',
  sessions,
  log,
});

try {
  await startServer({
    fetch: app.fetch,
    hostname: config.HOST ?? '127.0.0.1',
    port: config.PORT ?? 3001,
    log,
    onClose: async () => clearInterval(sweeper),
  });
  log.info('web started', { appview_url: config.APPVIEW_URL ?? 'http://127.0.0.1:3000', session_ttl_days: sessionTtlDays });
} catch {
  process.exit(1);
}
