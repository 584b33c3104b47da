// The worker: no HTTP port. Every WORKER_INTERVAL_MS it writes one row into
// worker_heartbeats and logs a JSON line. When the database has been
// unreachable for longer than WORKER_MAX_OUTAGE_MS it exits 1, so whatever
// supervises it notices. SIGTERM or SIGINT: finish the current write, close
// the pool, exit 0.
import { connect, recordHeartbeat } from '@board/db';

const service = 'worker';

function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, service, msg, ...fields })}\n`);
}

function readConfig(env: NodeJS.ProcessEnv): { databaseUrl: string; intervalMs: number; maxOutageMs: number } {
  const problems: string[] = [];
  const databaseUrl = env.DATABASE_URL?.trim() ?? '';
  if (databaseUrl === '') problems.push('DATABASE_URL is not set (postgres://user:password@host:5432/database)');
  else if (!/^postgres(ql)?:\/\//.test(databaseUrl)) problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');
  const positive = (name: string, fallback: number): number => {
    const raw = env[name]?.trim() ?? '';
    if (raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) problems.push(`${name} must be a positive whole number of milliseconds, got "${raw}"`);
    return value;
  };
  const intervalMs = positive('WORKER_INTERVAL_MS', 5000);
  const maxOutageMs = positive('WORKER_MAX_OUTAGE_MS', 30000);
  if (problems.length > 0) {
    process.stderr.write(`worker: config error: ${problems.join('; ')}\n`);
    process.exit(1);
  }
  return { databaseUrl, intervalMs, maxOutageMs };
}

const config = readConfig(process.env);
const database = connect(config.databaseUrl, { connectTimeoutMs: Math.min(5000, config.maxOutageMs), max: 1 });

let lastSuccess = Date.now();
let timer: NodeJS.Timeout | undefined;
let inFlight: Promise<void> | undefined;
let stopping = false;

async function beat(): Promise<void> {
  try {
    const row = await recordHeartbeat(database.db);
    lastSuccess = Date.now();
    log('info', 'heartbeat', { id: row.id, at: row.at.toISOString() });
  } catch (err) {
    const downForMs = Date.now() - lastSuccess;
    const message = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    if (downForMs > config.maxOutageMs) {
      log('error', 'database unreachable for too long, exiting', { down_for_ms: downForMs, max_outage_ms: config.maxOutageMs, error: message });
      await database.close().catch(() => {});
      process.exit(1);
    }
    log('warn', 'heartbeat failed', { down_for_ms: downForMs, error: message });
  }
}

function schedule(): void {
  if (stopping) return;
  // A chain of timeouts, not an interval: a slow write never overlaps the next.
  timer = setTimeout(() => {
    inFlight = beat().finally(() => {
      inFlight = undefined;
      schedule();
    });
  }, config.intervalMs);
}

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log('info', 'stopping', { signal });
  clearTimeout(timer);
  await inFlight;
  await database.close();
  log('info', 'stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

log('info', 'started', { interval_ms: config.intervalMs, max_outage_ms: config.maxOutageMs });
inFlight = beat().finally(() => {
  inFlight = undefined;
  schedule();
});
