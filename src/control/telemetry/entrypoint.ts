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
import { DURATION_BUCKETS_MS, TELEMETRY_AUDIENCE, type TelemetryBatch } from '../../telemetry/metrics.ts';
import { telemetryOf } from './object.ts';

const { verifier } = new IdentityState(normalizeBundle(bundledConfig).config.identity);
const source = new MeshSource(bundledConfig);
/** Per report: an isolate's second of calls has far fewer series. */
const MAX_ENTRIES = 2000;
/** Counters a service may report, and which label is its own name. */
const SERVICE_COUNTERS: Readonly<Record<string, number>> = {
  retries: 0,
  upstream_errors: 0,
  ejections: -1,
  ratelimit_decisions: -1,
};

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
    await stub.ingest(clean);
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
  if (requests.length + counters.length + hotKeys.length > MAX_ENTRIES) return 'batch too large';
  const out: TelemetryBatch = {
    requests: [],
    counters: [],
    hotKeys: [],
    dropped: isCount(batch.dropped) ? batch.dropped : 0,
  };
  for (const d of requests) {
    const l = d?.l;
    if (!l || !isCount(d.n) || typeof d.sum !== 'number' || !(d.sum >= 0) || !Array.isArray(d.b)) continue;
    if (d.b.length !== DURATION_BUCKETS_MS.length + 1 || !d.b.every(isCount)) continue;
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
    if (!c || !isCount(c.n) || !validCounter(c.name, c.v) || !Object.hasOwn(SERVICE_COUNTERS, c.name)) continue;
    const v = [...c.v];
    const own = SERVICE_COUNTERS[c.name]!;
    if (own >= 0) v[own] = caller;
    if (c.name === 'ratelimit_decisions') {
      v[1] = caller;
      if (!policies.some((p) => p.name === v[0])) continue;
    }
    if ((c.name === 'ejections' || c.name === 'upstream_errors') && !services.has(v[c.name === 'ejections' ? 0 : 1]!))
      continue;
    out.counters.push({ name: c.name, v, n: c.n });
  }
  for (const h of hotKeys) {
    if (!h || typeof h.key !== 'string' || h.key.length > 200 || !isCount(h.allowed) || !isCount(h.limited)) continue;
    if (!policies.some((p) => p.name === h.policy)) continue;
    out.hotKeys.push({ policy: h.policy, key: h.key, allowed: h.allowed, limited: h.limited });
  }
  return out;
}
