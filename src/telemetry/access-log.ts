/**
 * Access log lines: one JSON object per request at the gateway and per east-west call in a
 * service, on the worker's console (what `wrangler tail` and Workers Logs collect). Built only
 * from fields chosen here: never a header value, token, key or query value, whatever a request
 * carries. The query's parameter names are kept (which parameters a caller used is often what a
 * debugging session needs), their values never.
 */
import { sha256Hex } from '../core/hash.ts';
import { LruCache } from '../core/lru.ts';
import type { ObservabilityPlan } from './plan.ts';

export interface AccessEntry {
  /** "gateway" (a client's request) or "mesh" (a service's call to another). */
  kind: 'gateway' | 'mesh';
  startMs: number;
  durationMs: number;
  requestId: string;
  traceId: string;
  spanId: string;
  route: string | undefined;
  /** "gateway" or the calling service; at the gateway, who called is the client. */
  caller: string;
  service: string | undefined;
  version: string | undefined;
  endpoint: string | undefined;
  method: string;
  url: URL | string;
  status: number;
  flags: string;
  /** The user's `sub`, as accessLog.user says to write it. */
  user: string | undefined;
  /** none (the route checks no token), ok, or the refusal's code (e.g. invalid_token). */
  auth: string | undefined;
  /** allowed, limited, store_error, or undefined without limits. */
  rateLimit: string | undefined;
  retries: number;
  /** The mesh's error code when the mesh answered instead of a backend. */
  meshError: string | undefined;
  clientIp?: string | null;
}

/** What a parameter name looks like (short, plain): anything else, such as `?<token>` with no "=", is not written. */
const PARAM_NAME = /^[A-Za-z0-9_.\-[\]]{1,24}$/;

/** The path, and the query with its values taken out: `?a=&b=` (a name that is not name-like: `*`). */
export function loggedPath(url: URL | string): { path: string; query: string | undefined } {
  const u = typeof url === 'string' ? new URL(url, 'http://x') : url;
  if (u.search === '') return { path: u.pathname, query: undefined };
  const names: string[] = [];
  for (const name of u.searchParams.keys()) names.push(PARAM_NAME.test(name) ? `${name}=` : '*');
  return { path: u.pathname, query: names.length ? `?${names.join('&')}` : undefined };
}

function line(e: AccessEntry, user: string | undefined): string {
  const { path, query } = loggedPath(e.url);
  return JSON.stringify({
    level: 'info',
    msg: 'access',
    kind: e.kind,
    time: new Date(e.startMs).toISOString(),
    requestId: e.requestId,
    traceId: e.traceId,
    spanId: e.spanId,
    route: e.route,
    caller: e.caller,
    service: e.service,
    version: e.version,
    endpoint: e.endpoint,
    method: e.method,
    path,
    query,
    status: e.status,
    durationMs: e.durationMs,
    flags: e.flags,
    user,
    auth: e.auth,
    rateLimit: e.rateLimit,
    retries: e.retries,
    meshError: e.meshError,
    clientIp: e.clientIp ?? undefined,
  });
}

/** Hashed users: a digest per line would cost every request of a user a promise and a waitUntil. */
const hashed = new LruCache<string>(4096);

/** Writes the line (after hashing the user, when asked: a user's first line waits for the digest). */
export function writeAccessLog(
  plan: ObservabilityPlan,
  e: AccessEntry,
  waitUntil: (p: Promise<unknown>) => void,
): void {
  const config = plan.accessLog;
  if (!config) return;
  // Errors and the mesh's own answers always; successes as sampled.
  const success = e.status < 400 && e.meshError === undefined;
  if (success && config.successSampling < 1 && Math.random() >= config.successSampling) return;
  if (!config.clientIp) e.clientIp = undefined;
  if (e.user === undefined || config.user === 'sub') return console.log(line(e, e.user));
  if (config.user === 'omit') return console.log(line(e, undefined));
  const known = hashed.get(e.user);
  if (known !== undefined) return console.log(line(e, known));
  const user = e.user;
  waitUntil(
    sha256Hex(user).then((h) => {
      hashed.set(user, h.slice(0, 16), Number.POSITIVE_INFINITY);
      console.log(line(e, h.slice(0, 16)));
    }),
  );
}
