// Test helper: start a built service as a child process, read its output,
// wait for it to listen, stop it with SIGTERM.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';

/**
 * @param {string[]} argv
 * @param {{ cwd?: string, env?: Record<string, string> }} options
 */
export function startProcess(argv, { cwd, env = {} } = {}) {
  const [file, ...args] = argv;
  const child = spawn(/** @type {string} */ (file), args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  process.once('exit', () => child.kill('SIGKILL'));
  return {
    child,
    exited,
    output: () => ({ stdout, stderr }),
    /** Resolves once `predicate(stdout)` holds; rejects on exit or after `ms`. */
    async waitFor(predicate, ms = 10000) {
      const deadline = Date.now() + ms;
      while (!predicate(stdout)) {
        if (child.exitCode !== null) throw new Error(`process exited ${child.exitCode}: ${stdout}${stderr}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting; output so far: ${stdout}${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** Sends SIGTERM and resolves with the exit code and signal. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const open = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => socket.end(() => resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
