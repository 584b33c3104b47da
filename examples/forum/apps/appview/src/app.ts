import { Hono } from 'hono';
import {
  appliedMigrations,
  DatabaseUnavailableError,
  describeError,
  getForum,
  isUnavailableError,
  listCategories,
  withDeadline,
  type Sql,
} from '@atbb/db';
import { ids } from '@atbb/lexicon';
import { requestLogger, type Logger } from '@atbb/server';

export interface AppOptions {
  sql: Sql;
  version: string;
  log: Logger;
  forumDid: string;
  pdsUrl: string;
  oauthPublicUrl: string;
  /** How long /api/health waits for the database's answer. */
  healthTimeoutMs?: number;
  /**
   * Names of the migrations this build expects to be applied, or an Error
   * when they could not be read (health then cannot vouch for the schema).
   */
  migrations: readonly string[] | Error;
}

export function createApp(options: AppOptions): Hono {
  const { sql, version, log } = options;
  const healthTimeoutMs = options.healthTimeoutMs ?? 2000;
  const publicBase = options.oauthPublicUrl.replace(/\/+$/, '');
  const app = new Hono();

  app.use('*', requestLogger(log));

  // Health reflects the database because the appview is useless without it,
  // and the schema because a reachable but unmigrated database fails every
  // page: orchestrators should see that rather than a process that merely runs.
  // The reasons in the body are generic on purpose (this path is public);
  // the log line carries the details.
  app.get('/api/health', async (c) => {
    c.header('Cache-Control', 'no-store');
    const unhealthy = (migrations: 'pending' | 'unknown', reason: string) =>
      c.json({ status: 'error', database: 'up', migrations, reason, version }, 503);
    let applied: Set<string>;
    try {
      applied = await withDeadline(
        appliedMigrations(sql),
        healthTimeoutMs,
        () => new DatabaseUnavailableError(`no answer within ${healthTimeoutMs} ms`),
      );
    } catch (err) {
      if (isUnavailableError(err)) {
        log.warn('health check: database unavailable', { reason: describeError(err) });
        return c.json({ status: 'error', database: 'down', version }, 503);
      }
      log.warn('health check: cannot read the migration history', { reason: describeError(err) });
      return unhealthy('unknown', 'cannot read the migration history (schema_migrations)');
    }
    const expected = options.migrations;
    if (expected instanceof Error) {
      log.warn("health check: cannot read this build's migrations", { reason: describeError(expected) });
      return unhealthy('unknown', "this build's migrations could not be read");
    }
    const pending = expected.filter((name) => !applied.has(name));
    if (pending.length > 0) {
      log.warn('health check: migrations pending', { pending: pending.join(', ') });
      return unhealthy(
        'pending',
        `${pending.length} of ${expected.length} migrations are not applied: run the migrations (the image's \`migrate\` command)`,
      );
    }
    return c.json({ status: 'ok', database: 'up', version });
  });

  // Deliberately does nothing: it measures the proxy path, not the app. `?delay=ms` (at most 5 s) holds
  // the response open so shutdown tests can prove an in-flight request still completes.
  app.get('/api/ping', async (c) => {
    const delay = Math.min(Number.parseInt(c.req.query('delay') ?? '0', 10) || 0, 5000);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    return c.json({ pong: true });
  });

  app.get('/api/forum', async (c) => {
    const forum = await getForum(sql);
    if (!forum) return c.json({ error: 'not_found', path: c.req.path }, 404);
    return c.json({
      $type: ids.SpaceAtbbForum,
      did: forum.did ?? options.forumDid,
      pds: options.pdsUrl,
      name: forum.name,
      description: forum.description,
      createdAt: forum.createdAt,
    });
  });

  app.get('/api/categories', async (c) => {
    const forum = await getForum(sql);
    if (!forum) return c.json({ error: 'not_found', path: c.req.path }, 404);
    const categories = await listCategories(sql, forum.id);
    return c.json({ categories: categories.map((cat) => ({ $type: ids.SpaceAtbbCategory, ...cat })) });
  });

  // atproto OAuth clients are identified by the URL of their metadata
  // document, which is why the service must know its public URL.
  app.get('/api/oauth/client-metadata.json', (c) => {
    const clientId = `${publicBase}/api/oauth/client-metadata.json`;
    return c.json({
      client_id: clientId,
      client_name: 'atBB',
      client_uri: publicBase,
      application_type: 'web',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [`${publicBase}/api/oauth/callback`],
      scope: 'atproto transition:generic',
      token_endpoint_auth_method: 'none',
      dpop_bound_access_tokens: true,
    });
  });

  app.notFound((c) => c.json({ error: 'not_found', path: c.req.path }, 404));

  app.onError((err, c) => {
    // A database that went away is an outage callers should retry through
    // (503); anything else is a bug in this service (500).
    if (isUnavailableError(err)) {
      log.warn('database unavailable', { method: c.req.method, path: c.req.path, reason: describeError(err) });
      return c.json({ error: 'database_unavailable' }, 503);
    }
    log.error('request failed', { method: c.req.method, path: c.req.path, reason: describeError(err) });
    return c.json({ error: 'internal_error' }, 500);
  });

  return app;
}
