// Environment validation shared by the atBB services and the migrator.
// Every problem is reported by variable name only: values can be secrets
// (DATABASE_URL carries a password), and a log line is not the place for them.

export type Env = Readonly<Record<string, string | undefined>>;

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

interface Rule<T> {
  /** Returns undefined when the value is malformed. */
  parse(raw: string): T | undefined;
  /** Completes "<NAME> ..." in the error line. */
  expect: string;
}

function url(protocols: readonly string[]): (raw: string) => string | undefined {
  return (raw) => {
    try {
      const u = new URL(raw);
      return protocols.includes(u.protocol) ? raw : undefined;
    } catch {
      return undefined;
    }
  };
}

function integer(min: number, max: number): (raw: string) => number | undefined {
  return (raw) => {
    if (!/^\d+$/.test(raw)) return undefined;
    const n = Number(raw);
    return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
  };
}

function databaseUrl(raw: string): string | undefined {
  try {
    const u = new URL(raw);
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return undefined;
    // A host may also come from ?host=/path/to/socket, so only insist on one of the two.
    if (u.hostname === '' && !u.searchParams.has('host')) return undefined;
    return raw;
  } catch {
    return undefined;
  }
}

const RULES = {
  DATABASE_URL: {
    parse: databaseUrl,
    expect: 'must be a postgres:// or postgresql:// URL (percent-encode special characters in the password)',
  },
  // Lenient on the identifier itself: did:plc values are 24 base32 characters
  // in production, but examples and tests use short readable ones.
  FORUM_DID: {
    parse: (raw: string) => (/^did:(plc|web):[A-Za-z0-9._%-]+(:[A-Za-z0-9._%-]+)*$/.test(raw) ? raw : undefined),
    expect: 'must be a did:plc: or did:web: DID',
  },
  PDS_URL: { parse: url(['http:', 'https:']), expect: 'must be an http:// or https:// URL' },
  OAUTH_PUBLIC_URL: { parse: url(['http:', 'https:']), expect: 'must be an http:// or https:// URL' },
  SESSION_SECRET: {
    parse: (raw: string) => (raw.length >= 32 ? raw : undefined),
    expect: 'must be at least 32 characters (generate one with: openssl rand -hex 32)',
  },
  JETSTREAM_URL: { parse: url(['ws:', 'wss:']), expect: 'must be a ws:// or wss:// URL' },
  SESSION_TTL_DAYS: { parse: integer(1, 3650), expect: 'must be a positive whole number of days' },
  PORT: { parse: integer(1, 65535), expect: 'must be a port number between 1 and 65535' },
  HOST: {
    parse: (raw: string) => (/^\S+$/.test(raw) ? raw : undefined),
    expect: 'must be a host name or IP address',
  },
  LOG_LEVEL: {
    parse: (raw: string): LogLevel | undefined => {
      const level = raw.toLowerCase();
      return (LOG_LEVELS as readonly string[]).includes(level) ? (level as LogLevel) : undefined;
    },
    expect: `must be one of ${LOG_LEVELS.join(', ')}`,
  },
  APPVIEW_URL: { parse: url(['http:', 'https:']), expect: 'must be an http:// or https:// URL' },
  DB_WAIT_TIMEOUT: { parse: integer(0, 86400), expect: 'must be a whole number of seconds (0 = do not wait)' },
} satisfies Record<string, Rule<unknown>>;

export type VariableName = keyof typeof RULES;
export type ValueOf<N extends VariableName> = NonNullable<ReturnType<(typeof RULES)[N]['parse']>>;

export type Config<R extends VariableName, O extends VariableName> = { [K in R]: ValueOf<K> } & {
  [K in O]?: ValueOf<K>;
};

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`config error: ${problems.join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Reads the named variables. Collects every problem before failing so that an
 * operator fixes their env file in one pass rather than one restart per variable.
 */
export function readConfig<R extends VariableName, O extends VariableName = never>(
  spec: { required: readonly R[]; optional?: readonly O[] },
  env: Env = process.env,
): Config<R, O> {
  const missing: string[] = [];
  const malformed: string[] = [];
  const out: Record<string, unknown> = {};
  const visit = (name: VariableName, required: boolean) => {
    const raw = env[name];
    // An empty value is how env files usually say "not set" (FOO=).
    if (raw === undefined || raw.trim() === '') {
      if (required) missing.push(name);
      return;
    }
    const rule: Rule<unknown> = RULES[name];
    const value = rule.parse(raw);
    if (value === undefined) malformed.push(`${name} ${rule.expect}`);
    else out[name] = value;
  };
  for (const name of spec.required) visit(name, true);
  for (const name of spec.optional ?? []) visit(name, false);

  const problems: string[] = [];
  if (missing.length > 0) problems.push(`missing required ${missing.join(', ')}`);
  problems.push(...malformed);
  if (problems.length > 0) throw new ConfigError(problems);
  return out as Config<R, O>;
}

/**
 * readConfig for process entry points: a bad environment ends the process with
 * exit code 1 and exactly one line on stderr, which is what supervisors and
 * `docker logs` readers can act on.
 */
export function readConfigOrExit<R extends VariableName, O extends VariableName = never>(
  spec: { required: readonly R[]; optional?: readonly O[] },
  env: Env = process.env,
): Config<R, O> {
  try {
    return readConfig(spec, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
