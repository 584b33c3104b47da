// The schema and the committed migrations agree, without a database.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { getTableConfig } from 'drizzle-orm/pg-core';
import { boards, posts, workerHeartbeats } from '../dist/index.js';

const drizzleDir = new URL('../drizzle/', import.meta.url);

test('the schema has the three tables api and worker use', () => {
  const columns = (table) => getTableConfig(table).columns.map((c) => c.name).sort();
  assert.equal(getTableConfig(boards).name, 'boards');
  assert.deepEqual(columns(boards), ['created_at', 'description', 'id', 'slug', 'title']);
  assert.equal(getTableConfig(posts).name, 'posts');
  assert.deepEqual(columns(posts), ['author', 'board_id', 'body', 'created_at', 'id']);
  assert.equal(getTableConfig(posts).foreignKeys.length, 1);
  assert.equal(getTableConfig(workerHeartbeats).name, 'worker_heartbeats');
  assert.deepEqual(columns(workerHeartbeats), ['at', 'id']);
});

test('every SQL file is in meta/_journal.json and every journal entry has its file', () => {
  const journal = JSON.parse(readFileSync(new URL('meta/_journal.json', drizzleDir), 'utf8'));
  const tags = journal.entries.map((e) => e.tag);
  const files = readdirSync(drizzleDir).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, '')).sort();
  assert.deepEqual(tags, files);
  assert.equal(journal.dialect, 'postgresql');
});

test('the initial migration creates every table of the schema', () => {
  const sql = readFileSync(new URL('0000_init.sql', drizzleDir), 'utf8');
  for (const table of [boards, posts, workerHeartbeats]) {
    assert.match(sql, new RegExp(`CREATE TABLE "${getTableConfig(table).name}"`));
  }
});
