// A throwaway PostgreSQL server for tests, started from the server binaries
// (initdb, pg_ctl, postgres) on PATH, in a temporary directory, on a free
// loopback port, with password authentication. Shared by the packages'
// tests; it lives outside src/ so it never reaches a build or an image.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants as fsConstants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort } from './net.mjs';

// Runs as `node -e WATCHDOG <pid> <dir> <stop command...>`: polls for the
// test process and, once it is gone, stops the server and removes dir. It
// repeats that for a few seconds because an initdb or pg_ctl the test process
// had running is orphaned with it and may still be writing there.
const WATCHDOG = `
const { spawnSync } = require('node:child_process');
const { rmSync } = require('node:fs');
const [pid, dir, cmd, ...args] = process.argv.slice(1);
const sweep = (left) => {
  spawnSync(cmd, args, { stdio: 'ignore' });
  try { rmSync(dir, { recursive: true, force: true }); } catch {}
  if (left > 0) setTimeout(sweep, 1000, left - 1);
};
const timer = setInterval(() => {
  try { process.kill(Number(pid), 0); return; } catch {}
  clearInterval(timer);
  sweep(5);
}, 500);
`;

/** @param {string} name */
function findBinary(name) {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  // Debian keeps the server binaries off PATH unless linked; look there too.
  const versioned = '/usr/lib/postgresql';
  if (existsSync(versioned)) {
    for (const v of readdirSync(versioned).sort((a, b) => Number(b) - Number(a))) dirs.push(path.join(versioned, v, 'bin'));
  }
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  throw new Error(`PostgreSQL server binary ${name} not found on PATH; install the PostgreSQL server (e.g. postgresql-15)`);
}

/**
 * initdb refuses to run as root, and CI runs as root: then the server runs as
 * the `postgres` system user. Creating that user here would change the host
 * behind the caller's back, so a missing user is a clear failure instead.
 * @returns {{uid: number, gid: number} | undefined}
 */
function serverUser() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error(
      "tests run as root, where initdb refuses to run, and there is no 'postgres' system user to run it as; " +
        'install the PostgreSQL server package (it creates the user) or run the tests as a normal user',
    );
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Synchronous on purpose: a signal that arrives meanwhile is handled once the
 * command has returned, so cleanup never races initdb writing the data directory.
 * @param {string} cmd
 * @param {string[]} args
 * @param {{uid: number, gid: number} | undefined} user
 * @param {string} cwd
 */
function run(cmd, args, user, cwd) {
  const [file, argv] = user ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const r = spawnSync(file, argv, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    const output = `${r.stdout}${r.stderr}`.trim().split('\n').slice(-5).join(' | ');
    throw new Error(`${path.basename(cmd)} exited with ${r.status ?? r.signal}: ${output}`);
  }
}

/**
 * @typedef {object} TestPostgres
 * @property {string} host
 * @property {number} port
 * @property {string} user
 * @property {string} password
 * @property {(database?: string) => string} url connection URL for a database (default "postgres")
 * @property {() => Promise<void>} stop stops the server, keeping its data
 * @property {() => Promise<void>} start starts it again on the same port
 * @property {string} dir a private directory removed with the server; tests may keep scratch files here
 * @property {() => Promise<void>} cleanup stops it and removes every file
 */

/** @returns {Promise<TestPostgres>} */
export async function startPostgres() {
  const initdb = findBinary('initdb');
  const pgCtl = findBinary('pg_ctl');
  findBinary('postgres');
  const owner = serverUser();

  const dir = mkdtempSync(path.join(tmpdir(), 'atbb-pg-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const pwFile = path.join(dir, 'pwfile');
  const user = 'atbb';
  // Characters that need percent-encoding prove the URL handling end to end.
  const password = `pw:${randomBytes(9).toString('hex')}@/`;
  let port = 0;
  let running = false;

  const start = () => {
    // Durability settings off: the data is thrown away after the test anyway.
    const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    run(pgCtl, ['-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', opts, 'start'], owner, dir);
    running = true;
  };
  /** @param {'fast' | 'immediate'} mode */
  const stop = (mode) => {
    if (!running) return;
    run(pgCtl, ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop'], owner, dir);
    running = false;
  };

  // pg_ctl daemonises the server, so it outlives a test process that dies
  // abruptly: killed, or crashed on EPIPE after turbo stopped its parent
  // because another task failed. A detached watchdog stops the server and
  // removes the directory once this process is gone, however it went.
  const stopArgv = ['-D', dataDir, '-m', 'immediate', 'stop'];
  const [stopFile, stopArgs] = owner ? ['runuser', ['-u', 'postgres', '--', pgCtl, ...stopArgv]] : [pgCtl, stopArgv];
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG, String(process.pid), dir, stopFile, ...stopArgs], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();

  const removeAll = () => {
    try {
      stop('immediate');
    } catch {
      // best effort: the directory goes anyway
    }
    rmSync(dir, { recursive: true, force: true });
    watchdog.kill();
  };
  // Covers failed assertions and other orderly exits without waiting for the watchdog.
  process.once('exit', removeAll);
  const detach = () => process.removeListener('exit', removeAll);

  try {
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    if (owner) {
      chownSync(dir, owner.uid, owner.gid);
      chownSync(pwFile, owner.uid, owner.gid);
    }
    run(
      initdb,
      ['-D', dataDir, '-U', user, `--pwfile=${pwFile}`, '-A', 'scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'],
      owner,
      dir,
    );
    rmSync(pwFile);
    // Another test process may grab the port between our probe and the bind.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        start();
        break;
      } catch (err) {
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
        if (attempt >= 5 || !/could not (bind|create listen)/i.test(log)) throw err;
      }
    }
  } catch (err) {
    detach();
    removeAll();
    throw err;
  }

  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    url: (database = 'postgres') =>
      `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    stop: async () => stop('fast'),
    start: async () => start(),
    dir,
    cleanup: async () => {
      detach();
      try {
        stop('fast');
      } finally {
        rmSync(dir, { recursive: true, force: true });
        watchdog.kill();
      }
    },
  };
}
