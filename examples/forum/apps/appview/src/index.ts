import { readConfigOrExit } from '@atbb/config';
import { createDb, describeError, loadMigrations } from '@atbb/db';
import { createLogger, startServer } from '@atbb/server';
import { createApp } from './app.js';
import { readVersion } from './version.js';

const config = readConfigOrExit({
  required: ['DATABASE_URL', 'FORUM_DID', 'PDS_URL', 'OAUTH_PUBLIC_URL'],
  optional: ['JETSTREAM_URL', 'PORT', 'HOST', 'LOG_LEVEL'],
});

const version = readVersion();
const log = createLogger({ level: config.LOG_LEVEL ?? 'info', fields: { service: 'appview' } });

// A short connect timeout keeps /api/health honest: a request must not hang
// for the driver's default 30 s when the database is unreachable.
const sql = createDb(config.DATABASE_URL, { max: 10, connectTimeoutSeconds: 2, applicationName: 'atbb-appview' });

// What health compares the database with. Read once: the files are part of
// the build and cannot change while it runs.
const migrations = await loadMigrations().then(
  (list) => list.map((m) => m.name),
  (err: unknown) => {
    log.error("cannot read this build's migrations; health will report them unknown", { reason: describeError(err) });
    return err instanceof Error ? err : new Error(String(err));
  },
);

const app = createApp({
  sql,
  migrations,
  version,
  log,
  forumDid: config.FORUM_DID,
  pdsUrl: config.PDS_URL,
  oauthPublicUrl: config.OAUTH_PUBLIC_URL,
});

try {
  await startServer({
    fetch: app.fetch,
    hostname: config.HOST ?? '127.0.0.1',
    port: config.PORT ?? 3000,
    log,
    // Runs after the last request finished, so any query still pending is an
    // abandoned health probe against a hung database: don't wait long for it.
    onClose: () => sql.end({ timeout: 1 }),
  });
  log.info('appview started', {
    version,
    forum_did: config.FORUM_DID,
    // This example does not ingest from Jetstream; say whether it would.
    jetstream: config.JETSTREAM_URL ? 'configured' : 'not configured',
  });
} catch {
  // startServer has logged why (typically the port is taken).
  await sql.end({ timeout: 0 });
  process.exit(1);
}
