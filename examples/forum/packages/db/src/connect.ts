import postgres from 'postgres';

export type Sql = postgres.Sql;

export interface DbOptions {
  /** Pool size. */
  max?: number;
  /** Seconds before a connection attempt is abandoned. */
  connectTimeoutSeconds?: number;
  /** Shows up in pg_stat_activity, which is how an operator tells clients apart. */
  applicationName?: string;
  /**
   * Seconds after which the driver replaces a connection; null keeps it for
   * good, which a session-level advisory lock needs.
   */
  maxLifetimeSeconds?: number | null;
}

export function createDb(databaseUrl: string, options: DbOptions = {}): Sql {
  return postgres(databaseUrl, {
    max: options.max ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    ...(options.maxLifetimeSeconds !== undefined ? { max_lifetime: options.maxLifetimeSeconds } : {}),
    // Migrations use IF NOT EXISTS and friends; their NOTICEs would otherwise
    // land on stdout as unstructured text in the middle of JSON logs.
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? 'atbb' },
  });
}

const PERMANENT_CODES = new Set([
  '28P01', // invalid_password
  '28000', // invalid_authorization_specification (pg_hba rejected us)
  '3D000', // invalid_catalog_name: the database does not exist
]);

/** Failures that waiting cannot fix, so retrying would only delay the real message. */
export function isPermanentConnectError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && PERMANENT_CODES.has(code);
}

/**
 * True when a query failed because the database could not be reached or is
 * shutting down (a reason to answer 503 and retry later), as opposed to a
 * bug such as a syntax error.
 */
export function isUnavailableError(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  const e = err as { code?: unknown; name?: unknown } | null;
  if (typeof e?.code !== 'string') return false;
  // SQLSTATE classes 08 (connection), 53 (resources) and 57P (shutdown).
  if (e.name === 'PostgresError') return /^(08|53|57P)/.test(e.code);
  // Everything else with a code comes from the socket or the driver's
  // connection handling (ECONNREFUSED, CONNECT_TIMEOUT, CONNECTION_CLOSED...).
  return true;
}

/**
 * A one-line reason for a database error that is safe to print: drivers
 * sometimes echo connection details, so the URL and its password are masked
 * wherever they appear.
 */
export function describeError(err: unknown, databaseUrl?: string): string {
  let text: string;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    text = err.message || err.name;
    if (typeof code === 'string' && code !== '' && !text.includes(code)) text = `${text} (${code})`;
  } else {
    text = String(err);
  }
  if (databaseUrl) {
    const secrets = [databaseUrl];
    try {
      const u = new URL(databaseUrl);
      if (u.password) secrets.push(u.password, decodeURIComponent(u.password));
    } catch {
      // An unparsable URL still gets masked as a whole above.
    }
    for (const s of secrets) if (s) text = text.split(s).join('***');
  }
  return text.replace(/\s+/g, ' ').trim();
}

export class DatabaseUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseUnavailableError';
  }
}

/**
 * Runs `select 1`, giving up after timeoutMs. The pending query is left to
 * the driver's own connect timeout: a health check must answer promptly even
 * when the server is wedged rather than down.
 */
export async function ping(sql: Sql, timeoutMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DatabaseUnavailableError(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  const query = sql`select 1`.execute();
  // The loser of the race must not surface later as an unhandled rejection.
  query.catch(() => {});
  try {
    await Promise.race([query, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface WaitOptions extends DbOptions {
  /** 0 tries once; otherwise keep trying once a second for this long. */
  waitSeconds?: number;
  /** Receives one progress line per failed attempt. */
  progress?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Connects and proves the connection with `select 1`, retrying while the
 * database is still starting (the usual race in `compose up`).
 */
export async function connectWithRetry(databaseUrl: string, options: WaitOptions = {}): Promise<Sql> {
  const waitSeconds = options.waitSeconds ?? 0;
  const started = Date.now();
  for (;;) {
    // While waiting, an attempt should not run far past the deadline; a
    // single attempt gets the full timeout, as slow links (TLS to a managed
    // database) need it.
    const base = options.connectTimeoutSeconds ?? 5;
    const left = Math.ceil(waitSeconds - (Date.now() - started) / 1000);
    const connectTimeoutSeconds = waitSeconds > 0 ? Math.max(2, Math.min(base, left)) : base;
    const sql = createDb(databaseUrl, { ...options, connectTimeoutSeconds });
    try {
      await sql`select 1`;
      return sql;
    } catch (err) {
      await sql.end({ timeout: 0 }).catch(() => {});
      const reason = describeError(err, databaseUrl);
      if (isPermanentConnectError(err)) throw new DatabaseUnavailableError(`cannot use the database: ${reason}`);
      if (waitSeconds <= 0) throw new DatabaseUnavailableError(`database unreachable: ${reason}`);
      const elapsed = Math.floor((Date.now() - started) / 1000);
      if (elapsed >= waitSeconds) {
        throw new DatabaseUnavailableError(`database unreachable after waiting ${waitSeconds} s: ${reason}`);
      }
      options.progress?.(`waiting for database (${elapsed}/${waitSeconds} s): ${reason}`);
      await sleep(1000);
    }
  }
}
