import { connect } from 'node:net';
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
  /**
   * Seconds PostgreSQL lets one statement run (and a transaction sit idle)
   * before it cancels it; unset keeps the server's setting.
   */
  statementTimeoutSeconds?: number;
}

export function createDb(databaseUrl: string, options: DbOptions = {}): Sql {
  return postgres(databaseUrl, {
    max: options.max ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    ...(options.maxLifetimeSeconds !== undefined ? { max_lifetime: options.maxLifetimeSeconds } : {}),
    // Migrations use IF NOT EXISTS and friends; their NOTICEs would otherwise
    // land on stdout as unstructured text in the middle of JSON logs.
    onnotice: () => {},
    connection: {
      application_name: options.applicationName ?? 'atbb',
      // Startup parameters: they hold from the first statement of every
      // connection, including the ones the driver opens again by itself.
      ...(options.statementTimeoutSeconds
        ? {
            statement_timeout: options.statementTimeoutSeconds * 1000,
            idle_in_transaction_session_timeout: options.statementTimeoutSeconds * 1000,
          }
        : {}),
    },
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
 * True when a query failed because the database cannot be used right now (a
 * reason to answer 503 and retry later), as opposed to a bug such as a
 * syntax error: it cannot be reached, is shutting down, rejects our
 * credentials, or lacks the schema because the migrations have not run.
 */
export function isUnavailableError(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  const e = err as { code?: unknown; name?: unknown } | null;
  if (typeof e?.code !== 'string') return false;
  // SQLSTATE classes 08 (connection), 28 (credentials), 53 (resources) and
  // 57P (shutdown); 3D000 (no such database), 42P01 (no such table: not migrated).
  if (e.name === 'PostgresError') return /^(08|28|53|57P)/.test(e.code) || e.code === '3D000' || e.code === '42P01';
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
 * Settles like `work`, or rejects with `onTimeout()` once timeoutMs have
 * passed. The loser of the race must not surface later as an unhandled
 * rejection, so it is silenced; the caller decides what to do with a query
 * still running (usually: end the connection).
 */
export async function withDeadline<T>(work: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), timeoutMs);
  });
  work.catch(() => {});
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `select 1`, giving up after timeoutMs. The pending query is left to
 * the driver's own connect timeout: a health check must answer promptly even
 * when the server is wedged rather than down.
 */
export async function ping(sql: Sql, timeoutMs = 2000): Promise<void> {
  await withDeadline(sql`select 1`.execute(), timeoutMs, () => new DatabaseUnavailableError(`no answer within ${timeoutMs} ms`));
}

/** What sits at a database address, judged from its answer to an SSLRequest. */
export type Listener =
  | { kind: 'postgres' }
  | { kind: 'other'; answer: string }
  | { kind: 'silent' }
  | { kind: 'unreachable' };

// SSLRequest: length 8, code 80877103. A PostgreSQL server (or a pooler
// speaking its protocol) answers with the single byte S or N, and nothing
// else; any other first byte is another protocol.
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

/**
 * Asks host:port what it speaks, in one round trip that leaves no trace but
 * an "incomplete startup packet" line in a real server's log. Used only after
 * a connection attempt stalled, to tell the operator why.
 */
export function probeListener(host: string, port: number, timeoutMs = 1500): Promise<Listener> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let settled = false;
    const finish = (result: Listener) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'silent' }), timeoutMs);
    let received = Buffer.alloc(0);
    socket.once('connect', () => socket.write(SSL_REQUEST));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length === 1 && (received[0] === 0x53 || received[0] === 0x4e)) {
        // Give a longer answer a moment to arrive before calling it PostgreSQL.
        setTimeout(() => finish(received.length === 1 ? { kind: 'postgres' } : { kind: 'other', answer: printable(received) }), 100);
        return;
      }
      if (received.length >= 1) finish({ kind: 'other', answer: printable(received) });
    });
    socket.once('error', () => finish({ kind: 'unreachable' }));
    socket.once('close', () => finish(received.length ? { kind: 'other', answer: printable(received) } : { kind: 'silent' }));
  });
}

function printable(bytes: Buffer): string {
  const text = bytes.subarray(0, 32).toString('latin1');
  return text.replace(/[^\x20-\x7e]/g, '.');
}

/** The one-line reason for a listener that is not PostgreSQL. */
export function describeListener(where: string, listener: Listener): string | undefined {
  if (listener.kind !== 'other') return undefined;
  if (listener.answer.startsWith('HTTP/')) return `${where} answered like an HTTP server, not like PostgreSQL`;
  return `${where} answered with bytes PostgreSQL never sends (${JSON.stringify(listener.answer)})`;
}

/** host and port of the first host in a postgres:// URL, when it names one (not a socket path). */
function firstAddress(databaseUrl: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(databaseUrl);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!host) return undefined;
    return { host, port: u.port ? Number(u.port) : 5432 };
  } catch {
    return undefined;
  }
}

export interface WaitOptions extends DbOptions {
  /** 0 tries once; otherwise keep trying once a second for this long. */
  waitSeconds?: number;
  /** Receives one progress line per failed attempt. */
  progress?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A failure that waiting cannot fix. */
class PermanentError extends Error {}

// Driver errors that mean "connected, but no usable answer": what a listener
// speaking another protocol produces, besides our own deadline.
const STALLED_CODES = new Set(['CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED']);

function stalled(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && STALLED_CODES.has(code);
}

/**
 * One connection attempt, proven with `select 1`, that ends within
 * timeoutSeconds whatever answers. The driver's connect_timeout alone does
 * not bound it: a server that closes the connection before the handshake
 * completes (an HTTP server answering 400) sends the driver into an endless
 * silent reconnect loop, restarting its timer each time.
 */
async function attempt(databaseUrl: string, options: DbOptions, timeoutSeconds: number): Promise<Sql> {
  const sql = createDb(databaseUrl, { ...options, connectTimeoutSeconds: timeoutSeconds });
  try {
    await withDeadline(
      sql`select 1`.execute(),
      timeoutSeconds * 1000,
      () => new DatabaseUnavailableError(`no PostgreSQL handshake within ${timeoutSeconds} s`),
    );
    return sql;
  } catch (err) {
    await sql.end({ timeout: 0 }).catch(() => {});
    const address = firstAddress(databaseUrl);
    if (address && stalled(err)) {
      const where = `${address.host}:${address.port}`;
      const foreign = describeListener(where, await probeListener(address.host, address.port));
      if (foreign) throw new PermanentError(foreign);
    }
    throw err;
  }
}

/**
 * Connects and proves the connection with `select 1`, retrying while the
 * database is still starting (the usual race in `compose up`). Every attempt
 * ends within its connect timeout, and the whole wait within waitSeconds
 * plus one attempt.
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
    try {
      return await attempt(databaseUrl, options, connectTimeoutSeconds);
    } catch (err) {
      const reason = err instanceof PermanentError ? err.message : describeError(err, databaseUrl);
      if (err instanceof PermanentError || isPermanentConnectError(err)) {
        throw new DatabaseUnavailableError(`cannot use the database: ${reason}`);
      }
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
