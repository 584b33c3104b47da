import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from './log.js';

/** One log line per request, written after the response status is known. */
export function requestLogger(log: Logger): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    await next();
    log.info('request', {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
    });
  };
}

export interface StartOptions {
  fetch: (request: Request) => Response | Promise<Response>;
  hostname: string;
  port: number;
  log: Logger;
  /** Releases resources (database pools) once no request is in flight any more. */
  onClose?: () => Promise<void>;
  /** How long in-flight requests get before the process exits anyway. */
  shutdownTimeoutMs?: number;
  /** Tests start several servers in one process and must not have them call process.exit. */
  handleSignals?: boolean;
}

export interface RunningServer {
  server: Server;
  port: number;
  /** Stops accepting, waits for in-flight requests, then runs onClose. */
  close(): Promise<void>;
}

export function startServer(options: StartOptions): Promise<RunningServer> {
  const { log } = options;
  const handleSignals = options.handleSignals ?? true;
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 8000;

  return new Promise((resolve, reject) => {
    const server = serve({ fetch: options.fetch, hostname: options.hostname, port: options.port }) as Server;
    let closing: Promise<void> | undefined;

    const close = () => {
      closing ??= new Promise<void>((done) => {
        // server.close() only waits: it does not end keep-alive sockets that
        // go idle after their last response, so sweep those until it returns.
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        sweep.unref();
        server.closeIdleConnections();
        server.close(() => {
          clearInterval(sweep);
          void (options.onClose?.() ?? Promise.resolve())
            .catch((err: unknown) => log.error('error while releasing resources', { err }))
            .finally(done);
        });
      });
      return closing;
    };

    const onSignal = (signal: NodeJS.Signals) => {
      if (closing) return;
      log.info('shutting down', { signal });
      const force = setTimeout(() => {
        log.error('shutdown timed out; exiting with requests still open', { timeout_ms: shutdownTimeoutMs });
        process.exit(1);
      }, shutdownTimeoutMs);
      force.unref();
      void close().then(() => {
        log.info('stopped');
        process.exit(0);
      });
    };

    server.once('error', (err) => {
      log.error('server failed to start', { err, host: options.hostname, port: options.port });
      reject(err);
    });
    server.once('listening', () => {
      const port = (server.address() as AddressInfo).port;
      if (handleSignals) {
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      }
      log.info('listening', { host: options.hostname, port });
      resolve({ server, port, close });
    });
  });
}
