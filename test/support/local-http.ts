/**
 * HTTP to the local mesh from the end-to-end tests, each request on a fresh connection.
 *
 * Why: wrangler dev's proxy closes a keep-alive connection after 5 s idle. Node's fetch pools
 * connections and may reuse one at the very moment the proxy closes it; the request then fails
 * with "other side closed". On a busy machine the client's timers run late and this happens
 * often (it was the intermittent failure of the restart test). Browsers retry such a request;
 * a test must not depend on that race, so it does not reuse connections.
 */
import { Agent, fetch as undiciFetch, type RequestInit as UndiciInit } from 'undici';

const agent = new Agent({ pipelining: 0 });

export function localFetch(url: string, init: Omit<UndiciInit, 'dispatcher'> = {}): ReturnType<typeof undiciFetch> {
  return undiciFetch(url, { ...init, dispatcher: agent });
}
