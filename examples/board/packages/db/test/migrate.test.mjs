// drizzle-kit migrate against a real PostgreSQL: the schema, the seed, and
// the queries the services run.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { migrate, startPostgres } from '../../../test/support/postgres.mjs';
import { addPost, connect, findBoard, listBoards, listPosts, recordHeartbeat } from '../dist/index.js';

let pg;
let conn;

before(async () => {
  pg = await startPostgres();
  migrate(pg.url);
  conn = connect(pg.url);
});

after(async () => {
  await conn?.close();
  pg?.stop();
});

test('migrations seed two boards with one post each', async () => {
  const boards = await listBoards(conn.db);
  assert.deepEqual(
    boards.map((b) => [b.slug, b.postCount]),
    [
      ['general', 1],
      ['kit', 1],
    ],
  );
});

test('running drizzle-kit migrate again changes nothing', async () => {
  migrate(pg.url);
  const { rows } = await conn.pool.query('select count(*)::int as n from drizzle.__drizzle_migrations');
  assert.equal(rows[0].n, 2);
  assert.equal((await listBoards(conn.db)).length, 2);
});

test('posts and heartbeats can be written and read back', async () => {
  const board = await findBoard(conn.db, 'general');
  assert.ok(board);
  const post = await addPost(conn.db, board.id, 'tester', 'hello');
  const posts = await listPosts(conn.db, board.id);
  assert.equal(posts[0]?.id, post.id, 'newest post first');
  assert.equal(await findBoard(conn.db, 'nope'), undefined);
  const beat = await recordHeartbeat(conn.db);
  assert.ok(beat.id > 0);
  assert.ok(beat.at instanceof Date);
});
