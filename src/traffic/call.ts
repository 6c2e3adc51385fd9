/**
 * The outbound call: what the gateway's forward stage and a service's `mesh.fetch` hand to the
 * traffic layer, and the shape of the layers that carry it out. A layer is a function of the
 * next one, as in Tower/Linkerd stacks and Hono's compose: it may change the call, answer it
 * itself, or pass it on and look at the response.
 */
import type { MeshBindings } from '../core/bindings.ts';
import type { TraceContext } from '../core/trace.ts';
import type { MeshUser, VerifiedUser } from '../core/user.ts';
import type { IdentitySpec, TokenSourceSpec } from '../config/schema.ts';
import type { UserAudience } from '../identity/tokens.ts';
import type { ObservabilityPlan } from '../telemetry/plan.ts';
import type { MeshRuntime } from '../runtime/runtime.ts';
import type { Endpoint, EndpointSet } from './endpoints.ts';
import type { CallPolicy, HeaderOps, RoutePolicy, ServiceTraffic } from './policy.ts';
import type { Upstream } from './upstream.ts';

/** How the request to send is made. */
export type CallSource =
  /** The gateway forwarding a client's request (streamed, never buffered). */
  | {
      kind: 'edge';
      request: Request;
      url: URL;
      clientIp: string | null;
      route: {
        name: string;
        dropToken: TokenSourceSpec | undefined;
        policy: RoutePolicy | undefined;
        /** The route's RequestHeaderModifier, and its URLRewrite hostname. */
        requestHeaders: HeaderOps | undefined;
        hostname: string | undefined;
      };
      /** The Authorization header holds an admin token: never sent on. */
      dropAuthorization: boolean;
    }
  /** A service calling another with `mesh.fetch(service, path, init)`. */
  | { kind: 'service'; self: string; init: RequestInit };

/** Who the end user is: verified here (the gateway signs an assertion) or asserted to us (passed on). */
export type CallUser = { verified: VerifiedUser } | { asserted: MeshUser; assertion: string };

/** What the traffic layer needs of a compiled config (plan/ builds it). */
export interface TrafficPlan {
  readonly services: ReadonlyMap<string, TrafficService>;
  /** Access logs, metrics and tracing (compiled from the observability section). */
  readonly observability: ObservabilityPlan;
  readonly identity: IdentitySpec;
  /** Verified claims sent to backends: [claim, header]. */
  readonly claimHeaders: ReadonlyArray<readonly [string, string]>;
  /** Dropped from a client's request at the edge besides hop-by-hop and x-mesh-* headers. */
  readonly edgeDropped: ReadonlySet<string>;
  /** Claim header names outside x-mesh-*: never set by a caller, only by the mesh. */
  readonly claimHeaderNames: ReadonlySet<string>;
  /** Per service the gateway sends to: who a user assertion minted for that call is for. */
  readonly userAudiences: ReadonlyMap<string, UserAudience>;
}

export interface TrafficService {
  readonly name: string;
  /** In rotation (config backends overlaid by the registry's instances). */
  readonly endpoints: EndpointSet;
  /** Balancing, budget, outlier detection, cap, and the default call policy. */
  readonly traffic: ServiceTraffic;
  /** The layers every call to this service goes through, built once per config. */
  readonly stack: Send;
}

export interface OutboundCall {
  readonly service: string;
  /** Only this version, or undefined for the service's weights. */
  readonly version: string | undefined;
  /** Path (after any rewrite) and query to send. */
  readonly pathAndQuery: string;
  readonly source: CallSource;
  readonly requestId: string;
  readonly trace: TraceContext;
  readonly user: CallUser | undefined;
  readonly plan: TrafficPlan;
  readonly runtime: MeshRuntime;
  readonly env: MeshBindings;
  /** The request's waitUntil: metrics, spans and hashed log lines are finished after the response. */
  readonly waitUntil: (p: Promise<unknown>) => void;
  /** Set by the endpoint layer: this try's span id (the traceparent the endpoint gets). */
  trySpanId?: string;
  /** Set by callService: the target service as the plan in force has it. */
  target?: TrafficService;
  /** Set by the endpoint layer: the endpoint and how to reach it. */
  endpoint?: Endpoint;
  upstream?: Upstream;
  /** Set by the request layer: what will be sent (its headers may still be added to). */
  request?: Request;
  /** Set by callService: the route's timeouts and retries, or the service's. */
  policy?: CallPolicy;
  /** Set by the retry layer: the client's body, read once so each try can send it. */
  body?: ArrayBuffer;
  /** Endpoint keys tried so far (a retry prefers another). */
  tried?: string[];
  /** Cancels the try in flight (timeouts). */
  abort?: AbortController;
  /** Set by send: the endpoint could not be reached or threw (not an answer it gave). */
  unreachable?: boolean;
  /** Set by the endpoint layer: nothing could be tried (no endpoint in rotation, or none bound). */
  noEndpoint?: boolean;
  /** The answer is the mesh's, not a backend's: nothing to try, unreachable, or timed out. */
  noAnswer?: boolean;
  /** Set by the deadline layer: when the request timeout ends, and whether it has. */
  deadlineAt?: number;
  timedOut?: boolean;
  /** Retries made so far. */
  retries?: number;
  /** A sticky route's point in [0, 1) for this request: picks the version instead of chance. */
  stickyUnit?: number;
}

export type Send = (call: OutboundCall) => Promise<Response>;
export type Layer = (next: Send) => Send;

/** The layers in order, outermost first, around the terminal `send`. */
export function compose(layers: readonly Layer[], send: Send): Send {
  return layers.reduceRight<Send>((next, layer) => layer(next), send);
}

/** Who is calling, for messages and logs: "gateway" or the calling service. */
export function callerOf(call: OutboundCall): string {
  return call.source.kind === 'edge' ? 'gateway' : call.source.self;
}
