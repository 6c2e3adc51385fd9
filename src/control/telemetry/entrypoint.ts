/**
 * The only door services have into the metrics: a named entrypoint of the gateway worker
 * (`[[services]] binding = "MESH_TELEMETRY", service = "meshwork-gateway", entrypoint =
 * "Telemetry"`). A report needs the service's own identity token (audience
 * meshwork-telemetry), and every series in it is stamped with that service as its source: a
 * service can report its own calls, never calls as another service or as the gateway, and
 * cannot add series beyond what its calls could produce (destinations are services of the
 * config, labels are checked and bounded).
 */
import { WorkerEntrypoint } from 'cloudflare:workers';
import type { MeshBindings } from '../../core/bindings.ts';
import { normalizeBundle } from '../../config/bundle.ts';
import { bundledConfig } from '../../generated/bundle.ts';
import { IdentityState } from '../../identity/tokens.ts';
import { MeshSource } from '../../registry/source.ts';
import { validCounter } from '../../telemetry/aggregate.ts';
import { KNOWN_FLAGS } from '../../telemetry/flags.ts';
import {
  DURATION_BUCKETS_MS,
  MAX_REPORT_ENTRIES,
  TELEMETRY_AUDIENCE,
  type TelemetryBatch,
} from '../../telemetry/metrics.ts';
import { telemetryOf } from './object.ts';

const { verifier } = new IdentityState(normalizeBundle(bundledConfig).config.identity);
const source = new MeshSource(bundledConfig);
const KINDS = new Set(['unreachable', 'timeout']);
const DECISIONS = new Set(['allowed', 'limited', 'store_error']);
/** Most a report may say its isolate dropped (a made-up number would only inflate a counter). */
const MAX_DROPPED = 100_000;

/**
 * A counter a service may report, with its own name where the counter names the source, and
 * every other label one the config gives; undefined for anything else (auth failures and key
 * fetches are the gateway's alone).
 */
function counterAsReported(
  name: string,
  v: readonly string[],
  caller: string,
  services: ReadonlyMap<string, KnownService>,
  policies: ReadonlyArray<{ name: string }>,
): string[] | undefined {
  const endpointOf = (service: string, endpoint: string) =>
    services.get(service)?.endpoints.has(endpoint) ? endpoint : 'unknown';
  switch (name) {
    case 'retries':
      return services.has(v[1]!) ? [caller, v[1]!] : undefined;
    case 'upstream_errors':
      return services.has(v[1]!) && KINDS.has(v[3]!) ? [caller, v[1]!, endpointOf(v[1]!, v[2]!), v[3]!] : undefined;
    case 'ejections':
      return services.has(v[0]!) ? [v[0]!, endpointOf(v[0]!, v[1]!)] : undefined;
    case 'ratelimit_decisions':
      return policies.some((p) => p.name === v[0]) && DECISIONS.has(v[2]!) ? [v[0]!, caller, v[2]!] : undefined;
    default:
      return undefined;
  }
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

export class Telemetry extends WorkerEntrypoint<MeshBindings> {
  async report(identityToken: string, batch: TelemetryBatch): Promise<{ ok: true } | { ok: false; error: string }> {
    const io = { env: this.env, waitUntil: (p: Promise<unknown>) => this.ctx.waitUntil(p) };
    const check = await verifier.verifyIdentity(String(identityToken), TELEMETRY_AUDIENCE, io);
    if (!check.ok) return { ok: false, error: `telemetry refused: ${check.description}` };
    const caller = check.caller;
    const stub = telemetryOf(this.env);
    if (!stub) return { ok: false, error: 'telemetry refused: the gateway has no MESH_TELEMETRY binding' };
    const { plan } = await source.get(this.env, io.waitUntil);
    const known = new Map<string, KnownService>();
    for (const [name, svc] of plan.services) {
      const endpoints = new Set<string>();
      const versions = new Set<string>();
      for (const { item } of svc.endpoints.weighted) {
        endpoints.add(item.key);
        if (item.version !== undefined) versions.add(item.version);
      }
      known.set(name, { endpoints, versions });
    }
    const clean = sanitize(batch, caller, known, plan.services.get(caller)?.policy.rateLimits ?? []);
    if (typeof clean === 'string') return { ok: false, error: `telemetry refused: ${clean}` };
    await stub.ingest(clean, caller);
    return { ok: true };
  }
}

/** What a report may name of a service: its endpoints and versions in the config in force. */
export interface KnownService {
  endpoints: ReadonlySet<string>;
  versions: ReadonlySet<string>;
}

/**
 * The batch as `caller` may report it, or what is wrong with it. Every label is one the config
 * gives (a service, its endpoints and versions) or "unknown", so a service cannot fill the
 * object's series with made-up values.
 */
export function sanitize(
  batch: TelemetryBatch,
  caller: string,
  services: ReadonlyMap<string, KnownService>,
  policies: ReadonlyArray<{ name: string }>,
): TelemetryBatch | string {
  if (typeof batch !== 'object' || batch === null) return 'malformed batch';
  const { requests, counters, hotKeys } = batch;
  if (!Array.isArray(requests) || !Array.isArray(counters) || !Array.isArray(hotKeys)) return 'malformed batch';
  if (requests.length + counters.length + hotKeys.length > MAX_REPORT_ENTRIES) return 'batch too large';
  const out: TelemetryBatch = {
    requests: [],
    counters: [],
    hotKeys: [],
    dropped: isCount(batch.dropped) ? Math.min(batch.dropped, MAX_DROPPED) : 0,
  };
  for (const d of requests) {
    const l = d?.l;
    if (!l || !isCount(d.n) || d.n === 0 || !Number.isFinite(d.sum) || !(d.sum >= 0) || !Array.isArray(d.b)) continue;
    if (d.b.length !== DURATION_BUCKETS_MS.length + 1 || !d.b.every(isCount)) continue;
    // The histogram must add up to the count, or _bucket and _count would disagree.
    if (d.b.reduce((a, b) => a + b, 0) !== d.n) continue;
    if (!Number.isInteger(l.code) || l.code < 100 || l.code > 599 || !KNOWN_FLAGS.has(l.flags)) continue;
    const service = typeof l.service === 'string' ? services.get(l.service) : undefined;
    out.requests.push({
      // The caller is who the token says, whatever the batch claims; east-west calls have no route.
      l: {
        source: caller,
        service: service ? l.service : 'unknown',
        version: service?.versions.has(l.version) ? l.version : 'unknown',
        workload: service?.endpoints.has(l.workload) ? l.workload : 'unknown',
        route: '',
        code: l.code,
        flags: l.flags,
      },
      n: d.n,
      sum: d.sum,
      b: d.b,
    });
  }
  for (const c of counters) {
    if (!c || !isCount(c.n) || c.n === 0 || !validCounter(c.name, c.v)) continue;
    const v = counterAsReported(c.name, c.v, caller, services, policies);
    if (v) out.counters.push({ name: c.name, v, n: c.n });
  }
  for (const h of hotKeys) {
    if (!h || typeof h.key !== 'string' || h.key.length > 200 || !isCount(h.allowed) || !isCount(h.limited)) continue;
    if (!policies.some((p) => p.name === h.policy)) continue;
    out.hotKeys.push({ policy: h.policy, key: h.key, allowed: h.allowed, limited: h.limited });
  }
  return out;
}
