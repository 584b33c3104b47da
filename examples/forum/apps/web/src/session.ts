import { randomBytes } from 'node:crypto';

export interface Session {
  id: string;
  createdAt: number;
  expiresAt: number;
}

/**
 * In-memory sessions, as the design chose: they vanish on restart, and a
 * second replica would not see them. Bounded, because every cookie-less
 * visitor (crawlers included) creates one.
 */
export class MemorySessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #ttlMs: number;
  readonly #maxSessions: number;

  constructor(ttlMs: number, maxSessions = 10_000) {
    this.#ttlMs = ttlMs;
    this.#maxSessions = maxSessions;
  }

  get size(): number {
    return this.#sessions.size;
  }

  create(now = Date.now()): Session {
    const session: Session = { id: randomBytes(24).toString('base64url'), createdAt: now, expiresAt: now + this.#ttlMs };
    this.#sessions.set(session.id, session);
    // Map iteration order is insertion order, so the first key is the oldest.
    while (this.#sessions.size > this.#maxSessions) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    return session;
  }

  get(id: string, now = Date.now()): Session | undefined {
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    if (session.expiresAt <= now) {
      this.#sessions.delete(id);
      return undefined;
    }
    return session;
  }

  /** Drops expired sessions; run periodically so idle memory is returned. */
  sweep(now = Date.now()): number {
    let removed = 0;
    for (const [id, s] of this.#sessions) {
      if (s.expiresAt <= now) {
        this.#sessions.delete(id);
        removed++;
      }
    }
    return removed;
  }
}
