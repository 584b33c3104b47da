// Servers that sit where PostgreSQL should be but are not PostgreSQL: what a
// wrong port in DATABASE_URL or a misrouted proxy puts in front of a client.
// Loopback only; each records how many connections it saw.
import { createServer } from 'node:net';

/**
 * @typedef {object} Impostor
 * @property {number} port
 * @property {() => number} connections how many clients connected so far
 * @property {() => Promise<void>} close
 */

/**
 * @param {'http-close' | 'http-keep' | 'silent'} behaviour
 *   http-close: answers any bytes with `HTTP/1.1 400 Bad Request` and closes, as an HTTP server or proxy does;
 *   http-keep: answers the same but keeps the connection open;
 *   silent: accepts and never answers.
 * @returns {Promise<Impostor>}
 */
export function startImpostor(behaviour) {
  let count = 0;
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();
  const server = createServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (behaviour === 'silent') return;
    socket.once('data', () => {
      socket.write('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n\r\nBad Request');
      if (behaviour === 'http-close') socket.end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : 0,
        connections: () => count,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done(undefined));
          }),
      });
    });
  });
}

/**
 * A TCP relay to a real server that can be told to go quiet: it then keeps
 * the connections open but forwards nothing, like a network path that
 * silently drops packets mid-session.
 * @param {number} targetPort
 */
export function startRelay(targetPort) {
  let quiet = false;
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();
  const server = createServer(async (client) => {
    const { connect } = await import('node:net');
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.on('data', (d) => {
      if (!quiet) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!quiet) client.write(d);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : 0,
        goQuiet: () => {
          quiet = true;
        },
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done(undefined));
          }),
      });
    });
  });
}
