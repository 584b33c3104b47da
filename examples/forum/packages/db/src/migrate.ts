import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectWithRetry, DatabaseUnavailableError, describeError, withDeadline, type Sql } from './connect.js';

/** Where the build puts the SQL files: next to this module, in dist/migrations. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

// Any fixed bigint works as long as every migrator agrees on it; this one
// spells "atbb" in ASCII so it is recognisable in pg_locks.
const LOCK_KEY = '1635017314';

const FILE_NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;

/** How long PostgreSQL lets one statement of a migration run, unless MigrateOptions say otherwise. */
export const DEFAULT_STATEMENT_TIMEOUT_SECONDS = 600;
// A live server cancels a statement itself when its timeout passes; the
// client waits this much longer before it concludes that the server or the
// network went silent, which no server-side timeout can notice.
const ANSWER_GRACE_SECONDS = 3;

export interface Migration {
  name: string;
  checksum: string;
  sql: string;
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

/**
 * Reads NNNN_name.sql files in order. Line endings are normalised before
 * hashing so that a checkout with CRLF conversion does not look like an edit.
 */
export async function loadMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): Promise<Migration[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new MigrationError(`cannot read migrations directory ${dir}: ${describeError(err)}`);
  }
  const files = names.filter((n) => n.endsWith('.sql')).sort();
  const seen = new Map<string, string>();
  const migrations: Migration[] = [];
  for (const name of files) {
    const m = FILE_NAME.exec(name);
    if (!m) throw new MigrationError(`migration file ${name} must be named NNNN_description.sql`);
    const number = m[1] as string;
    const clash = seen.get(number);
    if (clash) throw new MigrationError(`migrations ${clash} and ${name} share the number ${number}`);
    seen.set(number, name);
    const sql = (await readFile(path.join(dir, name), 'utf8')).replace(/\r\n/g, '\n');
    migrations.push({ name, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  if (migrations.length === 0) throw new MigrationError(`no migrations found in ${dir}`);
  return migrations;
}

export interface MigrateOptions {
  databaseUrl: string;
  /** Seconds to keep retrying the first connection (0 = try once). */
  waitSeconds?: number;
  migrationsDir?: string;
  /** Receives human-readable progress lines. */
  log?: (line: string) => void;
  /**
   * Seconds one step may take: one migration file, or the wait for another
   * migrator's lock. PostgreSQL cancels a statement that runs longer, and the
   * migrator gives up a few seconds later when the server or the network has
   * gone silent. Default 600.
   */
  statementTimeoutSeconds?: number;
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
}

interface AppliedRow {
  name: string;
  checksum: string;
}

/**
 * Applies pending migrations. Safe to run concurrently (a session advisory
 * lock serialises runs; the loser finds nothing left to do) and safe to run
 * repeatedly. Refuses to touch a database whose history disagrees with the
 * files: an edited or missing migration means the schema is not what this
 * build expects, and carrying on would hide that.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const log = options.log ?? (() => {});
  const statementSeconds = options.statementTimeoutSeconds ?? DEFAULT_STATEMENT_TIMEOUT_SECONDS;
  const migrations = await loadMigrations(options.migrationsDir);
  const sql = await connectWithRetry(options.databaseUrl, {
    max: 1,
    waitSeconds: options.waitSeconds ?? 0,
    progress: log,
    applicationName: 'atbb-migrate',
    maxLifetimeSeconds: null,
    statementTimeoutSeconds: statementSeconds,
  });
  // Every round trip ends: with the server's answer, with its statement
  // timeout, or here, after which the connection is dropped (PostgreSQL
  // then rolls back whatever transaction it held).
  const answerSeconds = statementSeconds + ANSWER_GRACE_SECONDS;
  const bounded = <T>(work: Promise<T>): Promise<T> =>
    withDeadline(work, answerSeconds * 1000, () => {
      void sql.end({ timeout: 0 }).catch(() => {});
      return new DatabaseUnavailableError(`no answer from the database within ${answerSeconds} s`);
    });
  try {
    const [got] = await bounded(sql<{ locked: boolean }[]>`select pg_try_advisory_lock(${LOCK_KEY}::bigint) as locked`);
    if (!got?.locked) {
      log('another migration is running; waiting for it to finish');
      await bounded(sql`select pg_advisory_lock(${LOCK_KEY}::bigint)`).catch((err: unknown) => {
        throw new MigrationError(
          `another migration did not finish within ${statementSeconds} s: ${describeError(err, options.databaseUrl)}`,
        );
      });
    }
    const [session] = await bounded(sql<{ pid: number }[]>`select pg_backend_pid() as pid`);
    try {
      return await applyPending(sql, migrations, session?.pid ?? -1, log, bounded);
    } finally {
      await bounded(sql`select pg_advisory_unlock(${LOCK_KEY}::bigint)`).catch(() => {});
    }
  } catch (err) {
    if (err instanceof MigrationError) throw err;
    throw new MigrationError(describeError(err, options.databaseUrl));
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function applyPending(
  sql: Sql,
  migrations: Migration[],
  lockPid: number,
  log: (line: string) => void,
  bounded: <T>(work: Promise<T>) => Promise<T>,
): Promise<MigrateResult> {
  await bounded(sql`
    create table if not exists schema_migrations (
      name       text primary key,
      checksum   text not null,
      applied_at timestamptz not null default now()
    )`);
  const rows = await bounded(sql<AppliedRow[]>`select name, checksum from schema_migrations order by name`);
  const byName = new Map(migrations.map((m) => [m.name, m]));

  // Check the whole history before changing anything.
  for (const row of rows) {
    const file = byName.get(row.name);
    if (!file) {
      throw new MigrationError(
        `migration ${row.name} is recorded as applied but is not in this build; refusing to run an older build against a newer database`,
      );
    }
    if (file.checksum !== row.checksum) {
      throw new MigrationError(
        `migration ${row.name} was changed after it was applied (checksum mismatch); add a new migration instead of editing an applied one`,
      );
    }
  }

  const done = new Set(rows.map((r) => r.name));
  const result: MigrateResult = { applied: [], alreadyApplied: [...done] };
  for (const m of migrations) {
    if (done.has(m.name)) continue;
    await bounded(
      sql.begin(async (tx) => {
        // The driver reconnects silently after a dropped connection, and a new
        // session does not hold our lock: stop rather than run unserialised.
        const [now] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
        if (now?.pid !== lockPid) throw new MigrationError('lost the database connection holding the migration lock');
        // Simple protocol: a migration file holds several statements.
        await tx.unsafe(m.sql).simple();
        await tx`insert into schema_migrations (name, checksum) values (${m.name}, ${m.checksum})`;
      }),
    ).catch((err: unknown) => {
      if (err instanceof MigrationError) throw err;
      throw new MigrationError(`migration ${m.name} failed and was rolled back: ${describeError(err)}`);
    });
    log(`applied ${m.name}`);
    result.applied.push(m.name);
  }
  if (result.applied.length === 0) log(`database is up to date (${migrations.length} migrations applied)`);
  return result;
}

/**
 * Names of the migrations recorded in the database; empty when the history
 * table does not exist yet (nothing was ever migrated). Read-only: the
 * appview's health check asks this to tell "up" from "up and usable".
 */
export async function appliedMigrations(sql: Sql): Promise<Set<string>> {
  try {
    const rows = await sql<{ name: string }[]>`select name from schema_migrations`;
    return new Set(rows.map((r) => r.name));
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === '42P01') return new Set();
    throw err;
  }
}
