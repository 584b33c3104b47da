export {
  connectWithRetry,
  createDb,
  DatabaseUnavailableError,
  describeError,
  isPermanentConnectError,
  isUnavailableError,
  ping,
  type DbOptions,
  type Sql,
  type WaitOptions,
} from './connect.js';
export {
  DEFAULT_MIGRATIONS_DIR,
  loadMigrations,
  migrate,
  MigrationError,
  type MigrateOptions,
  type MigrateResult,
  type Migration,
} from './migrate.js';
export { getForum, listCategories, type Category, type Forum } from './queries.js';
