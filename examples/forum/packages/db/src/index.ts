export {
  connectWithRetry,
  createDb,
  DatabaseUnavailableError,
  describeError,
  describeListener,
  isPermanentConnectError,
  isUnavailableError,
  ping,
  probeListener,
  withDeadline,
  type DbOptions,
  type Listener,
  type Sql,
  type WaitOptions,
} from './connect.js';
export {
  appliedMigrations,
  DEFAULT_MIGRATIONS_DIR,
  DEFAULT_STATEMENT_TIMEOUT_SECONDS,
  loadMigrations,
  migrate,
  MigrationError,
  type MigrateOptions,
  type MigrateResult,
  type Migration,
} from './migrate.js';
export { getForum, listCategories, type Category, type Forum } from './queries.js';
