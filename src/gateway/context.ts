/**
 * What flows through the gateway pipeline. Each stage reads what earlier stages decided and
 * either adds to it (returns undefined) or answers the request (returns a Response).
 */
import type { VerifiedUser } from '../auth/verify.ts';
import type { MeshBindings } from '../core/bindings.ts';
import type { KeyIo } from '../core/keys.ts';
import type { TraceContext } from '../core/trace.ts';
import type { Plan, RoutePlan, Target } from '../plan/compile.ts';
import type { RouteMatch } from '../router/router.ts';
import type { MeshRuntime } from '../runtime/runtime.ts';
import type { OutboundCall } from '../traffic/call.ts';

export interface GatewayContext {
  readonly request: Request;
  readonly url: URL;
  /**
   * What routes match and backends receive (set by the canonicalize stage): url.pathname with
   * encoded unreserved characters decoded and runs of "/" merged.
   */
  path: string;
  /** The request's host, lowercase, without a trailing dot (set by the canonicalize stage). */
  host: string;
  readonly env: MeshBindings;
  /** The compiled config serving this request (immutable). */
  readonly plan: Plan;
  /** This isolate's state that outlives config versions. */
  readonly runtime: MeshRuntime;
  readonly requestId: string;
  readonly trace: TraceContext;
  /** CF-Connecting-IP: set by Cloudflare's edge, not forgeable by the client there. */
  readonly clientIp: string | null;
  /** env, the shared KV cache and waitUntil, for key lookups. */
  readonly io: KeyIo;
  /** Set by the match stage. */
  hit?: RouteMatch<RoutePlan>;
  /** The verified end user, set by the authenticate stage when the route has auth. */
  user?: VerifiedUser;
  /** Set by the target stage: the service (and version) the request goes to. */
  target?: Target;
  /** Set by the cors stage for an allowed origin: added to whatever answers the request. */
  corsHeaders?: Array<[string, string]>;
  /** Set by the target stage on a sticky route: the request's fixed point in [0, 1). */
  stickyUnit?: number;
  /** Path to send upstream (after rewrite), set by the target stage. */
  upstreamPath?: string;
  /** Headers for the client's response from earlier stages (e.g. RateLimit). */
  responseHeaders?: Array<[string, string]>;
  /** Set by the rate-limit stage: allowed, limited or store_error (the worst of the route's policies). */
  rateLimit?: 'allowed' | 'limited' | 'store_error';
  /** Set by the forward stage: the call as the traffic layer carried it out (endpoint, retries). */
  call?: OutboundCall;
}

export type Stage = (ctx: GatewayContext) => Response | undefined | Promise<Response | undefined>;

/** Runs stages in order until one answers. The last stage must always answer. */
export async function runPipeline(stages: readonly Stage[], ctx: GatewayContext): Promise<Response> {
  for (const stage of stages) {
    const res = await stage(ctx);
    if (res) return res;
  }
  throw new Error('gateway pipeline ended without a response');
}
