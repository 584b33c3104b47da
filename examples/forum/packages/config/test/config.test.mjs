import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, readConfig } from '../dist/index.js';

const SECRET = 'x'.repeat(40);
const VALID = {
  DATABASE_URL: 'postgres://atbb:hunter2@db:5432/atbb',
  FORUM_DID: 'did:plc:abcdefghijklmnopqrstuvwx',
  PDS_URL: 'https://pds.example.com',
  OAUTH_PUBLIC_URL: 'https://forum.example.com',
  SESSION_SECRET: SECRET,
};
const REQUIRED = /** @type {const} */ (['DATABASE_URL', 'FORUM_DID', 'PDS_URL', 'OAUTH_PUBLIC_URL', 'SESSION_SECRET']);
const OPTIONAL = /** @type {const} */ (['JETSTREAM_URL', 'SESSION_TTL_DAYS', 'PORT', 'HOST', 'LOG_LEVEL']);

/** @param {Record<string, string | undefined>} env */
function problemsOf(env) {
  try {
    readConfig({ required: REQUIRED, optional: OPTIONAL }, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('readConfig', () => {
  it('returns typed values for a valid environment', () => {
    const cfg = readConfig(
      { required: REQUIRED, optional: OPTIONAL },
      { ...VALID, PORT: '8080', SESSION_TTL_DAYS: '14', LOG_LEVEL: 'DEBUG', JETSTREAM_URL: 'wss://jetstream.example.com/subscribe' },
    );
    assert.equal(cfg.DATABASE_URL, VALID.DATABASE_URL);
    assert.equal(cfg.PORT, 8080);
    assert.equal(cfg.SESSION_TTL_DAYS, 14);
    assert.equal(cfg.LOG_LEVEL, 'debug');
    assert.equal(cfg.HOST, undefined);
  });

  it('accepts postgresql:// and did:web:', () => {
    const cfg = readConfig(
      { required: ['DATABASE_URL', 'FORUM_DID'] },
      { DATABASE_URL: 'postgresql://u:p@localhost/db', FORUM_DID: 'did:web:forum.example.com' },
    );
    assert.equal(cfg.FORUM_DID, 'did:web:forum.example.com');
  });

  it('lists every missing variable at once, on one line', () => {
    const err = problemsOf({ FORUM_DID: VALID.FORUM_DID });
    assert.equal(err.message, 'config error: missing required DATABASE_URL, PDS_URL, OAUTH_PUBLIC_URL, SESSION_SECRET');
    assert.ok(!err.message.includes('\n'));
  });

  it('treats an empty value as missing', () => {
    const err = problemsOf({ ...VALID, SESSION_SECRET: '  ' });
    assert.equal(err.message, 'config error: missing required SESSION_SECRET');
  });

  const malformed = [
    ['DATABASE_URL', 'mysql://root:hunter2@db/atbb', 'DATABASE_URL must be a postgres:// or postgresql:// URL'],
    ['DATABASE_URL', 'postgres://u:p@@/x y', 'DATABASE_URL must be a postgres:// or postgresql:// URL'],
    ['FORUM_DID', 'did:key:z6Mkabc', 'FORUM_DID must be a did:plc: or did:web: DID'],
    ['FORUM_DID', 'did:plc:has spaces', 'FORUM_DID must be a did:plc: or did:web: DID'],
    ['PDS_URL', 'ftp://pds.example.com', 'PDS_URL must be an http:// or https:// URL'],
    ['OAUTH_PUBLIC_URL', 'forum.example.com', 'OAUTH_PUBLIC_URL must be an http:// or https:// URL'],
    ['SESSION_SECRET', 'short-secret-value', 'SESSION_SECRET must be at least 32 characters'],
    ['JETSTREAM_URL', 'https://jetstream.example.com', 'JETSTREAM_URL must be a ws:// or wss:// URL'],
    ['SESSION_TTL_DAYS', '0', 'SESSION_TTL_DAYS must be a positive whole number of days'],
    ['SESSION_TTL_DAYS', '1.5', 'SESSION_TTL_DAYS must be a positive whole number of days'],
    ['SESSION_TTL_DAYS', '-3', 'SESSION_TTL_DAYS must be a positive whole number of days'],
    ['PORT', '70000', 'PORT must be a port number between 1 and 65535'],
    ['PORT', 'http', 'PORT must be a port number between 1 and 65535'],
    ['LOG_LEVEL', 'verbose', 'LOG_LEVEL must be one of debug, info, warn, error'],
  ];
  for (const [name, value, expected] of malformed) {
    it(`rejects ${name}=${JSON.stringify(value)} without echoing the value`, () => {
      const err = problemsOf({ ...VALID, [name]: value });
      assert.ok(err.message.startsWith(`config error: ${expected}`), err.message);
      assert.ok(!err.message.includes(value), 'the value must never appear in the message');
    });
  }

  it('reports missing and malformed variables together', () => {
    const err = problemsOf({ ...VALID, DATABASE_URL: undefined, FORUM_DID: 'nope', PORT: '0' });
    assert.deepEqual(err.problems, [
      'missing required DATABASE_URL',
      'FORUM_DID must be a did:plc: or did:web: DID',
      'PORT must be a port number between 1 and 65535',
    ]);
  });

  it('ignores variables it was not asked about', () => {
    const cfg = readConfig({ required: ['DATABASE_URL'] }, { DATABASE_URL: VALID.DATABASE_URL, PORT: 'garbage' });
    assert.deepEqual(Object.keys(cfg), ['DATABASE_URL']);
  });
});
