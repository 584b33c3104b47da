import { addPost, findBoard, listBoards, listPosts, type Database, type Post } from '@board/db';
import { Hono } from 'hono';
import { readCategories } from './categories.js';
import { log } from './log.js';

export interface AppOptions {
  db: Database;
  /** Folder of category JSON files (default: apps/api/data). */
  dataDir?: string;
}

const MAX_AUTHOR = 40;
const MAX_BODY = 2000;

/** Errors that mean "no database right now" rather than a bug. */
function isDatabaseDown(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN', '57P01', '57P03'].includes(code)) return true;
    if (/timeout exceeded when trying to connect|Connection terminated/i.test(e.message)) return true;
  }
  return false;
}

function postJson(post: Post) {
  return { id: post.id, author: post.author, body: post.body, createdAt: post.createdAt.toISOString() };
}

export function createApp({ db, dataDir }: AppOptions): Hono {
  // Everything lives under /api; anything else, and any unknown /api path,
  // gets Hono's own 404: text/plain "404 Not Found".
  const app = new Hono().basePath('/api');

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    log('info', 'request', {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
    });
  });

  app.get('/boards', async (c) => c.json(await listBoards(db)));

  app.get('/boards/:slug/posts', async (c) => {
    const board = await findBoard(db, c.req.param('slug'));
    if (!board) return c.json({ error: 'no such board' }, 404);
    const posts = await listPosts(db, board.id);
    return c.json({
      board: { slug: board.slug, title: board.title, description: board.description },
      posts: posts.map(postJson),
    });
  });

  app.post('/boards/:slug/posts', async (c) => {
    const board = await findBoard(db, c.req.param('slug'));
    if (!board) return c.json({ error: 'no such board' }, 404);
    let input: unknown;
    try {
      input = await c.req.json();
    } catch {
      return c.json({ error: 'the request body must be JSON' }, 400);
    }
    const { author, body } = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
    const text = typeof body === 'string' ? body.trim() : '';
    const name = typeof author === 'string' && author.trim() !== '' ? author.trim() : 'anonymous';
    if (text === '' || text.length > MAX_BODY) return c.json({ error: `body must be 1-${MAX_BODY} characters` }, 400);
    if (name.length > MAX_AUTHOR) return c.json({ error: `author must be at most ${MAX_AUTHOR} characters` }, 400);
    const post = await addPost(db, board.id, name, text);
    return c.json(postJson(post), 201);
  });

  app.get('/categories', async (c) => c.json(await readCategories(dataDir)));

  app.onError((err, c) => {
    if (isDatabaseDown(err)) {
      log('warn', 'database unavailable', { path: c.req.path, error: err.message });
      return c.json({ error: 'database unavailable' }, 503);
    }
    log('error', 'request failed', { path: c.req.path, error: err.message });
    return c.json({ error: 'internal error' }, 500);
  });

  return app;
}
