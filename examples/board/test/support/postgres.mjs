// Test helper: a disposable PostgreSQL cluster in a temporary directory, on a
// free loopback port, and the board's migrations applied to it by the same
// `drizzle-kit migrate` production uses. Not part of any build.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const dbPackageDir = path.join(root, 'packages', 'db');

/** The directory holding initdb, pg_ctl and postgres: PATH first, then Debian's versioned folders. */
function serverBinDir() {
  const candidates = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    for (const version of readdirSync(debian).sort((a, b) => Number(b) - Number(a))) candidates.push(path.join(debian, version, 'bin'));
  }
  const dir = candidates.find((d) => ['initdb', 'pg_ctl', 'postgres'].every((bin) => existsSync(path.join(d, bin))));
  if (!dir) throw new Error('PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql/*/bin');
  return dir;
}

/** initdb will not run as root: then everything runs as the postgres system user. */
function runAs() {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const uid = id('-u');
  const gid = id('-g');
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('running as root needs a "postgres" system user for initdb (install the PostgreSQL server package), or run as a normal user');
  }
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

function command(user, bin, args) {
  return user ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

function run(user, bin, args) {
  const [file, argv] = command(user, bin, args);
  const result = spawnSync(file, argv, { encoding: 'utf8', cwd: '/' });
  if (result.status !== 0) {
    throw new Error(`${path.basename(bin)} failed (${result.status ?? result.signal}): ${`${result.stdout}${result.stderr}`.trim().slice(-600)}`);
  }
}

/** A TCP port nothing listens on right now, on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a cluster and returns its URL and a stop function. The cluster is
 * also stopped when this process exits, and by a detached shell loop if the
 * process is killed outright.
 * @returns {Promise<{ url: string, port: number, stop: () => void }>}
 */
export async function startPostgres() {
  const bin = serverBinDir();
  const user = runAs();
  const dir = mkdtempSync(path.join(tmpdir(), 'board-pg-'));
  const data = path.join(dir, 'data');
  const password = `s3cret/${process.pid}`; // a "/" proves the URL is encoded properly
  writeFileSync(path.join(dir, 'pw'), password);
  if (user) {
    chownSync(dir, user.uid, user.gid);
    chownSync(path.join(dir, 'pw'), user.uid, user.gid);
  }
  run(user, path.join(bin, 'initdb'), ['-D', data, '-U', 'board', `--pwfile=${path.join(dir, 'pw')}`, '-A', 'scram-sha-256', '--no-sync', '-E', 'UTF8', '--locale=C']);

  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c full_page_writes=off -c synchronous_commit=off`;
      run(user, path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-o', options, '-w', '-t', '30', 'start']);
      break;
    } catch (err) {
      if (attempt >= 3) throw err; // someone else took the port; try another
    }
  }

  const stopArgs = ['-D', data, '-m', 'immediate', '-w', 'stop'];
  const [stopFile, stopArgv] = command(user, path.join(bin, 'pg_ctl'), stopArgs);
  // If this process is killed (turbo stopping a failed run), nothing below
  // runs: a detached loop notices and cleans up instead.
  const quoted = [stopFile, ...stopArgv].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const guard = spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${quoted} >/dev/null 2>&1; rm -rf '${dir}'`], {
    detached: true,
    stdio: 'ignore',
  });
  guard.unref();

  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    spawnSync(stopFile, stopArgv, { stdio: 'ignore', cwd: '/' });
    rmSync(dir, { recursive: true, force: true });
    guard.kill();
  };
  process.once('exit', stop);
  return { url: `postgres://board:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`, port, stop };
}

/**
 * Applies packages/db/drizzle with drizzle-kit, exactly as the image does.
 * @param {string} url
 */
export function migrate(url) {
  const result = spawnSync(path.join(dbPackageDir, 'node_modules', '.bin', 'drizzle-kit'), ['migrate'], {
    cwd: dbPackageDir,
    env: { ...process.env, DATABASE_URL: url },
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`drizzle-kit migrate failed (${result.status}): ${`${result.stdout}${result.stderr}`.trim().slice(-1000)}`);
  return `${result.stdout}${result.stderr}`;
}
