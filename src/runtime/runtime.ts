/**
 * What one isolate keeps across config versions. A compiled plan is immutable and replaced
 * whenever a config is applied; the state here is not: verified tokens and fetched key sets,
 * minted identity tokens, rate-limit leases, outlier state, retry budgets and balancer rotations. Each piece is keyed by the part of the config that gives it meaning, so an apply that
 * changes routes keeps every cache, and one that changes an issuer drops only that issuer's.
 */
import { claimHeaders } from '../auth/claims.ts';
import { AuthState } from '../auth/verify.ts';
import { kvOf, type MeshBindings } from '../core/bindings.ts';
import type { KeyIo } from '../core/keys.ts';
import type { VerifiedUser } from '../core/user.ts';
import type { IdentitySpec } from '../config/schema.ts';
import { IdentityState } from '../identity/tokens.ts';
import { Limiter } from '../ratelimit/limiter.ts';
import { TrafficState } from '../resilience/state.ts';
import { Recorder } from '../telemetry/recorder.ts';

/** Identity configs kept at once: the current one and the few still served during a change. */
const MAX_IDENTITIES = 4;

type ClaimMapping = ReadonlyArray<readonly [string, string]>;

export class MeshRuntime {
  /** End-user tokens: verified and rejected ones, remote key sets. */
  readonly auth = new AuthState();
  /** Rate-limit client with this isolate's leases. */
  readonly limiter = new Limiter();
  /** Requests in flight, outlier state, retry budgets and rotations of the endpoints it calls. */
  readonly traffic = new TrafficState();
  /** Metric counts and spans not yet sent (src/telemetry). */
  readonly telemetry = new Recorder();
  /** What this isolate refused from the shared KV namespace (forged or damaged entries), for /_mesh/health. */
  readonly counters = { snapshotsRejected: 0, jwksCacheRejected: 0 };
  readonly #identities = new Map<string, IdentityState>();
  /** The same spec object asks again on every request: answered without fingerprinting it. */
  readonly #identityBySpec = new WeakMap<IdentitySpec, IdentityState>();
  /** Claim headers per verified user: the token cache hands back the same user object per token. */
  readonly #claimHeaders = new WeakMap<VerifiedUser, { mapping: ClaimMapping; headers: Array<[string, string]> }>();

  /** The identity machinery for this identity config (kept while the config stays the same). */
  identity(spec: IdentitySpec): IdentityState {
    const known = this.#identityBySpec.get(spec);
    if (known) return known;
    const key = IdentityState.fingerprint(spec);
    let state = this.#identities.get(key);
    if (!state) {
      state = new IdentityState(spec);
      this.#identities.set(key, state);
      if (this.#identities.size > MAX_IDENTITIES) this.#identities.delete(this.#identities.keys().next().value!);
    }
    this.#identityBySpec.set(spec, state);
    return state;
  }

  claimHeadersOf(user: VerifiedUser, mapping: ClaimMapping): Array<[string, string]> {
    const hit = this.#claimHeaders.get(user);
    if (hit?.mapping === mapping) return hit.headers;
    const headers = claimHeaders(user, mapping);
    this.#claimHeaders.set(user, { mapping, headers });
    return headers;
  }

  /**
   * What key lookups need from the current request's worker. With `identity`, shared KV cache
   * entries are sealed with this worker's signing key (the gateway's) and unsealed ones refused.
   */
  keyIo(env: MeshBindings, waitUntil: (p: Promise<unknown>) => void, identity?: IdentitySpec): KeyIo {
    const seal = identity ? this.identity(identity).kvSeal(env) : undefined;
    return {
      env,
      kv: kvOf(env),
      waitUntil,
      seal,
      rejected: () => {
        this.counters.jwksCacheRejected++;
      },
      fetched: (issuer, ok) => this.telemetry.metrics.count('jwks_fetches', [issuer, ok ? 'ok' : 'error']),
    };
  }
}
