import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono, type Context } from 'hono';
import { getSignedCookie, setSignedCookie } from 'hono/cookie';
import { requestLogger, type Logger } from '@atbb/server';
import { AppviewClient, type Failure } from './appview.js';
import { errorPage, forumPage } from './render.js';
import { MemorySessionStore } from './session.js';

export const DEFAULT_PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));
const SESSION_COOKIE = 'atbb_session';
const IMMUTABLE = 'public, max-age=31536000, immutable';

export interface AppOptions {
  appviewUrl: string;
  sessionSecret: string;
  sessionTtlDays: number;
  /** Secure cookies only make sense when the public URL is https. */
  secureCookies: boolean;
  log: Logger;
  sessions?: MemorySessionStore;
  publicDir?: string;
  appviewTimeoutMs?: number;
}

/**
 * Assets are cached for a year, so the page links them with a content hash
 * in the query string: a new build changes the URL instead of serving stale CSS.
 */
function assetHref(publicDir: string, file: string): string {
  try {
    const digest = createHash('sha256').update(readFileSync(path.join(publicDir, file))).digest('hex').slice(0, 12);
    return `/static/${file}?v=${digest}`;
  } catch {
    return `/static/${file}`;
  }
}

export function createApp(options: AppOptions): Hono {
  const { log } = options;
  const publicDir = options.publicDir ?? DEFAULT_PUBLIC_DIR;
  const ttlSeconds = options.sessionTtlDays * 86_400;
  // Browsers cap cookie lifetimes at 400 days (and hono refuses more); the
  // store keeps the configured TTL, but the cookie cannot outlive 400 days.
  const cookieMaxAge = Math.min(ttlSeconds, 400 * 86_400);
  const sessions = options.sessions ?? new MemorySessionStore(ttlSeconds * 1000);
  const appview = new AppviewClient(options.appviewUrl, options.appviewTimeoutMs);
  const styleHref = assetHref(publicDir, 'style.css');
  const app = new Hono();

  app.use('*', requestLogger(log));

  app.use(
    '/static/*',
    serveStatic({
      root: publicDir,
      rewriteRequestPath: (p) => p.replace(/^\/static/, ''),
      onFound: (_path, c) => {
        c.header('Cache-Control', IMMUTABLE);
      },
    }),
  );
  // A miss must not fall through to the page routes, nor be cached.
  app.get('/static/*', (c) => c.text('not found', 404));

  const unavailable = (c: Context, failure: Failure) => {
    log.warn('appview unavailable', { status: failure.status, reason: failure.reason });
    if (failure.status === 503) c.header('Retry-After', '30');
    return c.html(
      errorPage(
        'Forum temporarily unavailable',
        `The forum API is unavailable right now (it ${failure.reason}). Please try again in a moment.`,
        styleHref,
      ),
      failure.status,
    );
  };

  const ensureSession = async (c: Context) => {
    const id = await getSignedCookie(c, options.sessionSecret, SESSION_COOKIE);
    if (id && sessions.get(id)) return;
    const session = sessions.create();
    await setSignedCookie(c, SESSION_COOKIE, session.id, options.sessionSecret, {
      path: '/',
      httpOnly: true,
      sameSite: 'Lax',
      secure: options.secureCookies,
      maxAge: cookieMaxAge,
    });
  };

  app.get('/', async (c) => {
    await ensureSession(c);
    // Pages carry a per-visitor cookie: keep them out of shared caches.
    c.header('Cache-Control', 'no-store');
    const [forum, categories] = await Promise.all([appview.forum(), appview.categories()]);
    if (!forum.ok) return unavailable(c, forum);
    if (!categories.ok) return unavailable(c, categories);
    return c.html(forumPage(forum.value, categories.value, styleHref));
  });

  app.notFound((c) => c.html(errorPage('Page not found', `There is no page at ${c.req.path}.`, styleHref), 404));

  app.onError((err, c) => {
    log.error('request failed', { method: c.req.method, path: c.req.path, err });
    return c.html(errorPage('Something went wrong', 'The page could not be rendered.', styleHref), 500);
  });

  return app;
}
