/**
 * The only door services have into the rate-limit buckets: a named entrypoint of the gateway
 * worker (`[[services]] binding = "MESH_RATE_LIMITER", service = "meshwork-gateway", entrypoint =
 * "RateLimits"`). Services get no binding to the RateLimiter Durable Objects themselves.
 *
 * A call needs the service's own identity token (audience meshwork-limiter) and names one of
 * that service's own policies (services.<name>.policy.rateLimits in the config in force) and a
 * bucket key. Everything else comes from the config: the policy's parameters (and the override
 * for the key's values), the cost, the lease size and lifetime. Buckets are named by their
 * enforcer, so a service can spend or refill only its own: never the gateway's, never another
 * service's.
 */
import { WorkerEntrypoint } from 'cloudflare:workers';
import { namespaceOf, type MeshBindings } from '../core/bindings.ts';
import { errorText, logEvent } from '../core/log.ts';
import { normalizeBundle } from '../config/bundle.ts';
import { bundledConfig } from '../generated/bundle.ts';
import { IdentityState } from '../identity/tokens.ts';
import { Coalescer } from '../ratelimit/coalesce.ts';
import { LIMITER_AUDIENCE, storeBucket, type GateAnswer, type GateRequest } from '../ratelimit/limiter.ts';
import type { RateLimiter, TakeRequest, TakeResult } from '../ratelimit/store.ts';
import { MeshSource } from '../registry/source.ts';

const { verifier } = new IdentityState(normalizeBundle(bundledConfig).config.identity);
/** The config in force, read like the gateway's own (bundled routes/ overlaid by snapshots). */
const source = new MeshSource(bundledConfig);
const MAX_KEY = 600;
/** Calls from every service isolate this gateway isolate serves share the calls to each object. */
const coalescer = new Coalescer<TakeRequest, TakeResult>();

export class RateLimits extends WorkerEntrypoint<MeshBindings> {
  /** A refusal is an answer, not an exception: the calling service treats it as a store failure. */
  async take(identityToken: string, request: GateRequest): Promise<GateAnswer> {
    const io = { env: this.env, waitUntil: (p: Promise<unknown>) => this.ctx.waitUntil(p) };
    const check = await verifier.verifyIdentity(String(identityToken), LIMITER_AUDIENCE, io);
    if (!check.ok) return { ok: false, error: `rate limit refused: ${check.description}` };
    const caller = check.caller;
    if (typeof request?.policy !== 'string' || typeof request.key !== 'string' || typeof request.raw !== 'string')
      return { ok: false, error: 'rate limit refused: malformed request' };
    if (request.key.length > MAX_KEY || request.raw.length > MAX_KEY)
      return { ok: false, error: 'rate limit refused: key too long' };
    const { plan } = await source.get(this.env, io.waitUntil);
    const limit = plan.services.get(caller)?.policy.rateLimits.find((l) => l.name === request.policy);
    if (!limit) return { ok: false, error: `rate limit refused: "${request.policy}" is not a policy of ${caller}` };
    const ns = namespaceOf<RateLimiter>(this.env, limit.store);
    if (!ns) return { ok: false, error: `rate limit refused: the gateway has no ${limit.store} binding` };
    const params = limit.overrides.get(request.raw) ?? limit.params;
    const lease = limit.lease
      ? {
          want: Math.min(Math.max(Number(request.want) || limit.lease.size, limit.cost), params.burst),
          leaseTtlMs: limit.lease.ttlMs,
          ...(request.returning && typeof request.returning.lease === 'string'
            ? {
                returning: { lease: request.returning.lease, units: Math.max(0, Number(request.returning.units) || 0) },
              }
            : {}),
        }
      : {};
    try {
      const key = { id: request.key, raw: request.raw, shown: request.raw };
      const take: TakeRequest = { params, cost: limit.cost, ...lease };
      return { ok: true, result: await storeBucket(ns, coalescer, limit, key, caller, io.waitUntil)(take) };
    } catch (e) {
      logEvent('error', 'rate limit store failed', { caller, policy: limit.name, error: errorText(e) });
      return { ok: false, error: 'rate limit store failed' };
    }
  }
}
