// A small client for the appview API. It classifies failures so that the
// page can tell a visitor the truth: 503 when the API cannot be reached or
// fails with a server error (its database is down, rejects the password, or
// lacks the schema: an outage to retry through), 502 when it answered with
// something unusable.

export interface Forum {
  did: string;
  name: string;
  description: string;
}

export interface Category {
  slug: string;
  name: string;
  description: string;
}

export type Failure = { ok: false; status: 502 | 503; reason: string };
export type Result<T> = { ok: true; value: T } | Failure;

export class AppviewClient {
  readonly #base: string;
  readonly #timeoutMs: number;

  constructor(baseUrl: string, timeoutMs = 3000) {
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#timeoutMs = timeoutMs;
  }

  async #get(path: string): Promise<Result<unknown>> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      return { ok: false, status: 503, reason: timedOut ? `did not answer within ${this.#timeoutMs} ms` : 'could not be reached' };
    }
    if (!res.ok) {
      await res.body?.cancel();
      return { ok: false, status: res.status >= 500 ? 503 : 502, reason: `answered HTTP ${res.status}` };
    }
    try {
      return { ok: true, value: await res.json() };
    } catch {
      return { ok: false, status: 502, reason: 'answered with invalid JSON' };
    }
  }

  async forum(): Promise<Result<Forum>> {
    const r = await this.#get('/api/forum');
    if (!r.ok) return r;
    const v = r.value as Partial<Forum> | null;
    if (typeof v?.name !== 'string') return { ok: false, status: 502, reason: 'answered without a forum name' };
    return { ok: true, value: { did: String(v.did ?? ''), name: v.name, description: String(v.description ?? '') } };
  }

  async categories(): Promise<Result<Category[]>> {
    const r = await this.#get('/api/categories');
    if (!r.ok) return r;
    const list = (r.value as { categories?: unknown } | null)?.categories;
    if (!Array.isArray(list)) return { ok: false, status: 502, reason: 'answered without a category list' };
    return {
      ok: true,
      value: list.map((c: Partial<Category>) => ({
        slug: String(c.slug ?? ''),
        name: String(c.name ?? ''),
        description: String(c.description ?? ''),
      })),
    };
  }
}
