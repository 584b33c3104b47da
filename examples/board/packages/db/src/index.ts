// What the api and the worker share: a connection pool, the drizzle client
// and the few queries they run.
import { asc, count, desc, eq } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as schema from './schema.js';

export { schema };
export const { boards, posts, workerHeartbeats } = schema;

export type Database = NodePgDatabase<typeof schema>;

export interface Connection {
  db: Database;
  pool: pg.Pool;
  /** Closes every connection; the process can then exit on its own. */
  close: () => Promise<void>;
}

export interface ConnectOptions {
  /** Milliseconds to wait for a connection before failing (default 5000). */
  connectTimeoutMs?: number;
  max?: number;
}

export function connect(url: string, options: ConnectOptions = {}): Connection {
  const pool = new pg.Pool({
    connectionString: url,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    max: options.max ?? 5,
  });
  // An idle client losing its server (a database restart) must not crash
  // the process; the next query gets a fresh connection.
  pool.on('error', () => {});
  const db = drizzle(pool, { schema });
  return { db, pool, close: () => pool.end() };
}

export interface BoardSummary {
  slug: string;
  title: string;
  description: string;
  postCount: number;
}

export async function listBoards(db: Database): Promise<BoardSummary[]> {
  const rows = await db
    .select({
      slug: boards.slug,
      title: boards.title,
      description: boards.description,
      postCount: count(posts.id),
    })
    .from(boards)
    .leftJoin(posts, eq(posts.boardId, boards.id))
    .groupBy(boards.id)
    .orderBy(asc(boards.slug));
  return rows;
}

export type Board = typeof boards.$inferSelect;
export type Post = typeof posts.$inferSelect;

export async function findBoard(db: Database, slug: string): Promise<Board | undefined> {
  const [board] = await db.select().from(boards).where(eq(boards.slug, slug)).limit(1);
  return board;
}

export async function listPosts(db: Database, boardId: number, limit = 100): Promise<Post[]> {
  return db.select().from(posts).where(eq(posts.boardId, boardId)).orderBy(desc(posts.createdAt), desc(posts.id)).limit(limit);
}

export async function addPost(db: Database, boardId: number, author: string, body: string): Promise<Post> {
  const [post] = await db.insert(posts).values({ boardId, author, body }).returning();
  if (!post) throw new Error('insert returned no row');
  return post;
}

export async function recordHeartbeat(db: Database): Promise<{ id: number; at: Date }> {
  const [row] = await db.insert(workerHeartbeats).values({}).returning();
  if (!row) throw new Error('insert returned no row');
  return row;
}
