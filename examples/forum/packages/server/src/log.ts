import type { LogLevel } from '@atbb/config';

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line it writes. */
  child(fields: Fields): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level?: LogLevel;
  fields?: Fields;
  /** Where lines go; stdout by default so container log drivers pick them up. */
  write?: (line: string) => void;
}

// Error objects stringify to {} in JSON; keep what a reader of the log needs.
function normalise(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? { name: value.name, message: value.message } : { name: value.name, message: value.message, code };
  }
  return value;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = RANK[options.level ?? 'info'];
  const base = options.fields ?? {};
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));

  const emit = (level: LogLevel, msg: string, fields?: Fields) => {
    if (RANK[level] < threshold) return;
    const record: Fields = { time: new Date().toISOString(), level, msg };
    for (const [k, v] of Object.entries(base)) record[k] = normalise(v);
    if (fields) for (const [k, v] of Object.entries(fields)) record[k] = normalise(v);
    write(JSON.stringify(record));
  };

  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}
