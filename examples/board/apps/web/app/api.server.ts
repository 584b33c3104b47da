// The only way pages reach the board API: server-side, at API_BASE_URL
// (e.g. http://127.0.0.1:4000). Failures become route errors with a status a
// person and a proxy can act on: 503 when the API cannot be reached or says
// it is unavailable, 502 when it answers with something unusable.
import { data } from 'react-router';

export interface ErrorData {
  message: string;
}

const TIMEOUT_MS = 5000;

export function apiBaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  const raw = env.API_BASE_URL?.trim() ?? '';
  if (raw === '') {
    throw data<ErrorData>({ message: 'API_BASE_URL is not set, so this server does not know where the board API is.' }, { status: 500 });
  }
  return raw.replace(/\/+$/, '');
}

function unavailable(): never {
  throw data<ErrorData>(
    { message: 'The board API cannot be reached right now. Try again in a moment.' },
    { status: 503, headers: { 'Retry-After': '30' } },
  );
}

/**
 * Calls the API and returns the status and parsed JSON body for 2xx, 400 and
 * 404 answers (the caller decides what those mean); throws a route error
 * response for everything else.
 */
export async function callApi<T>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const url = `${apiBaseUrl()}${path}`;
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch {
    // Connection refused, DNS failure, timeout: the API is not there.
    unavailable();
  }
  if (response.status === 503) unavailable();
  if (response.ok || response.status === 400 || response.status === 404) {
    try {
      return { status: response.status, body: (await response.json()) as T };
    } catch {
      // fall through: not JSON
    }
  }
  throw data<ErrorData>({ message: `The board API answered ${path} with an unusable response (HTTP ${response.status}).` }, { status: 502 });
}
