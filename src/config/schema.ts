/**
 * The routes file schema: the single definition of what `routes/*.yaml` may contain, and of every
 * default. A validated config is this schema's output, with each default filled in, so nothing
 * downstream repeats a default (`MeshConfig` is `z.output` of `Config`).
 *
 * zod validates it (in Node for the CLI and the build, in workerd for the control plane), and
 * `z.toJSONSchema` exports it for editors. Cross-references between files (a route naming a
 * service, a version that must exist) are checked in `validate.ts`, which knows file origins.
 */
import { z } from 'zod';
import { DEFAULT_CLAIM_HEADERS, MESH_HEADER_PREFIX, RESERVED_CLAIM_HEADERS } from '../core/header-names.ts';
import { defaultEndpointName, ENDPOINT_NAME } from '../core/endpoint.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds as a number, or a string with a unit: "500ms", "30s", "5m", "1h", "7d". */
export const Duration = z
  .union([z.number().min(0), z.string().regex(/^\d+(\.\d+)?(ms|s|m|h|d)$/)], {
    error: 'must be a duration: seconds as a number, or a string like "30s", "5m", "1h", "1d"',
  })
  .transform((v) => (typeof v === 'number' ? v : Number.parseFloat(v) * DURATION_UNITS[v.replace(/^[\d.]+/, '')]!));

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable / secret name');

/** A JSON Web Key Set: inline, or read from an env var / wrangler secret holding its JSON. */
const JwksSource = z.union(
  [
    z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }),
    z.strictObject({ env: EnvName.describe('Env var or wrangler secret holding the JWKS JSON.') }),
  ],
  { error: 'must be an inline JWKS { keys: [...] } or { env: NAME }' },
);

export const ServiceName = z
  .string()
  .max(63)
  .regex(DNS_LABEL, 'must be a DNS label: lowercase letters, digits and "-", starting and ending alphanumeric')
  .refine((v) => v !== 'gateway', '"gateway" is reserved: it names the edge gateway as a caller')
  .describe('Service name, a DNS label (as a Kubernetes Service name).');

const RouteName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/, 'must be lowercase letters, digits, "-", "." or "_"')
  .describe('Unique route name; appears in errors, logs and metrics.');

export const Version = z
  .string()
  .max(63)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/, 'must be letters, digits, ".", "_" or "-"')
  .describe('Version label, e.g. v1.');

export const Weight = z
  .number()
  .int('must be a whole number')
  .min(0)
  .max(1_000_000)
  .describe('Relative weight; 0 sends no traffic. Default 1.');

export const EndpointName = z
  .string()
  .regex(
    ENDPOINT_NAME,
    'must be letters, digits, ".", "_", ":", "~" or "-" (at most 253), starting and ending alphanumeric',
  )
  .describe("Endpoint name, unique within the service version. Default: the binding name, or the URL's host[:port].");

export const BindingName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid binding name (letters, digits, "_")')
  .describe('Name of the service binding in the calling worker (wrangler [[services]] binding).');

function hasNoCredentials(u: string): boolean {
  try {
    const url = new URL(u);
    return !url.username && !url.password;
  } catch {
    return true; // not a URL at all: reported by the url check
  }
}

export const BackendUrl = z
  .url({ protocol: /^https?$/, error: 'must be an absolute http:// or https:// URL' })
  .refine((u) => !/[?#]/.test(u), 'must not contain a query or fragment')
  .refine(hasNoCredentials, 'must not contain credentials (user:password@): they would be compiled into every bundle')
  .describe('Base URL of a backend outside Workers; the request path is appended to its path.');

/** The endpoint name a URL backend gets by default; undefined when the URL itself is invalid (reported there). */
function defaultNameOf(url: string): string | undefined {
  try {
    return defaultEndpointName({ url });
  } catch {
    return undefined;
  }
}

export const Backend = z
  .strictObject({
    binding: BindingName.optional(),
    url: BackendUrl.optional(),
    version: Version.optional(),
    weight: Weight.default(1),
    name: EndpointName.optional(),
  })
  .superRefine((b, ctx) => {
    if ((b.binding === undefined) === (b.url === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'a backend needs exactly one of "binding" or "url"' });
    } else if (b.name === undefined && b.url !== undefined) {
      const name = defaultNameOf(b.url);
      if (name !== undefined && !ENDPOINT_NAME.test(name))
        ctx.addIssue({
          code: 'custom',
          path: ['url'],
          message: `"${name}" cannot name an endpoint: give the backend a "name"`,
        });
    }
  })
  .describe('One way to reach the service: a worker over a service binding, or a URL.');

const KEY_SOURCE = "(ip|route|caller|claim:[^\\s?]+|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)";
/** One key part, or alternatives "a ?? b": the first that has a value for the request. */
const KEY_PART = new RegExp(`^${KEY_SOURCE}( *\\?\\? *${KEY_SOURCE})*$`);

/** How many Durable Objects a policy's buckets are spread over (rate-limits.md, Where buckets live). */
const Partitions = z.number().int().min(1).max(1024);

export const RateLimitPolicy = z
  .strictObject({
    algorithm: z
      .enum(['token-bucket', 'gcra'], { error: 'must be token-bucket or gcra' })
      .default('token-bucket')
      .describe('Default token-bucket.'),
    limit: z.number().int().min(1).describe('Tokens (requests of cost 1) per period.'),
    period: Duration.pipe(z.number().positive('must be longer than 0')).describe('e.g. 1s, 1m, 1d.'),
    burst: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Bucket capacity (token-bucket, default = limit) or requests allowed back to back (gcra, default 1).'),
    key: z
      .array(
        z
          .string()
          .regex(
            KEY_PART,
            'must be ip, route, caller, claim:<name> or header:<name>, or alternatives joined by "??" (claim:sub ?? ip)',
          ),
      )
      .min(1)
      .default(['ip'])
      .describe(
        'What identifies a bucket; several parts combine. "a ?? b" takes the first with a value (claim:sub ?? ip). Default [ip].',
      ),
    cost: z.number().int().min(1).default(1).describe('Tokens each request takes (default 1).'),
    overrides: z
      .record(
        z.string().min(1),
        z.strictObject({
          limit: z.number().int().min(1).optional(),
          burst: z.number().int().min(1).optional(),
          multiplier: z.number().positive().optional().describe('Scales limit and burst.'),
        }),
      )
      .default({})
      .describe('Per key value (parts joined with "|"), e.g. acme: { multiplier: 10 }.'),
    callers: z
      .array(z.string().max(63).regex(DNS_LABEL, 'must be "gateway" or a service name'))
      .min(1)
      .optional()
      .describe(
        'Service policies only: count only calls from these mesh members; others pass this policy. Absent: every caller counts.',
      ),
    onStoreFailure: z
      .enum(['open', 'closed'], { error: 'must be open or closed' })
      .default('open')
      .describe('When the store cannot be reached: admit (open, default) or refuse with 503 (closed).'),
    mode: z
      .enum(['exact', 'lease'], { error: 'must be exact or lease' })
      .default('exact')
      .describe(
        "exact (default): every request decided by the bucket's object (an isolate's concurrent requests share calls); lease: isolates spend small leases locally.",
      ),
    partitions: Partitions.optional().describe(
      "Spread this policy's buckets over this many Durable Objects, each holding many keys (overrides rateLimitStore.partitions). Absent: the store's setting. See docs/rate-limits.md for the trade-off.",
    ),
    lease: z
      .strictObject({
        size: z.number().int().min(1).optional().describe('Units per lease (default 10% of burst, at least 1).'),
        ttl: Duration.default(1).describe('How long an isolate may spend a lease (default 1s).'),
      })
      .optional()
      .describe('Lease mode only; defaults apply whenever mode is lease.'),
  })
  .superRefine((p, ctx) => {
    const burst = p.burst ?? (p.algorithm === 'gcra' ? 1 : p.limit);
    if (p.cost > burst)
      ctx.addIssue({
        code: 'custom',
        path: ['cost'],
        message: `cost ${p.cost} exceeds the burst (${burst}): no request could ever pass`,
      });
    if (p.lease && p.mode !== 'lease')
      ctx.addIssue({ code: 'custom', path: ['lease'], message: '"lease" settings need mode: lease' });
    for (const [value, o] of Object.entries(p.overrides)) {
      const b = Math.round((o.burst ?? burst) * (o.multiplier ?? 1));
      if (p.cost > b)
        ctx.addIssue({
          code: 'custom',
          path: ['overrides', value],
          message: `this override leaves a burst of ${b}, below the cost ${p.cost}: "${value}" could never pass`,
        });
    }
  })
  // Defaults that depend on other fields, filled in once here.
  .transform((p) => {
    const burst = p.burst ?? (p.algorithm === 'gcra' ? 1 : p.limit);
    const lease =
      p.mode === 'lease'
        ? { size: p.lease?.size ?? Math.max(1, Math.floor(burst / 10)), ttl: p.lease?.ttl ?? 1 }
        : undefined;
    return { ...p, burst, lease };
  })
  .describe('A rate-limit policy; attach it to routes (rateLimits) or services (policy.rateLimits).');

const CallerName = z.string().max(63).regex(DNS_LABEL, 'must be "gateway" or a service name');

export const ServicePolicy = z
  .strictObject({
    allowCallers: z
      .array(CallerName)
      .optional()
      .describe('Mesh members ("gateway" or service names) allowed to call; absent = any authenticated member.'),
    allowAnonymous: z.boolean().default(false).describe('Accept calls without a mesh identity (default false).'),
    rateLimits: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Rate-limit policies applied to calls into this service. Absent: none.'),
  })
  .superRefine((p, ctx) => {
    // An unlisted member could simply call without its identity and be let in anonymously.
    if (p.allowAnonymous && p.allowCallers)
      ctx.addIssue({
        code: 'custom',
        path: ['allowAnonymous'],
        message: 'allowAnonymous cannot go with allowCallers: any caller could drop its identity to get past the list',
      });
  })
  .describe('Who may call this service, enforced by its withMesh wrapper.');

/**
 * Gateway API HTTPRouteTimeouts (GEP-1742), the same fields and meaning: `request` bounds the
 * whole request at the mesh (every try and back-off), `backendRequest` each try. "0s" means no
 * timeout. Both run until the backend's response starts; a body streaming after that is not cut.
 */
export const Timeouts = z
  .strictObject({
    request: Duration.optional().describe(
      'Whole request, all tries and back-off included, until the response starts. Absent or "0s": none.',
    ),
    backendRequest: Duration.optional().describe(
      'Each try to a backend. Absent: bounded only by "request". "0s": none. May not exceed "request".',
    ),
  })
  .superRefine((t, ctx) => {
    if (t.request && t.backendRequest && t.backendRequest > t.request)
      ctx.addIssue({
        code: 'custom',
        path: ['backendRequest'],
        message: 'backendRequest may not be longer than request (Gateway API)',
      });
  })
  .describe('Timeouts, as Gateway API HTTPRouteTimeouts. An expired one answers 504 and cancels the call.');

const StatusCode = z.number().int().min(500).max(599);

/**
 * Gateway API HTTPRouteRetry (GEP-1731): `attempts` counts retries, not tries; `codes` and
 * `backoff` as there. The rest follow Envoy: only idempotent methods unless `unsafeMethods`, and
 * a body is replayed only if it is known to fit `maxBodyBytes` (Content-Length), else not retried.
 */
export const Retry = z
  .strictObject({
    attempts: z.number().int().min(0).max(10).default(2).describe('Retries after the first try (default 2).'),
    codes: z
      .array(StatusCode)
      .default([502, 503, 504])
      .describe('Response codes that are retried (default 502, 503, 504).'),
    onConnectFailure: z
      .boolean()
      .default(true)
      .describe('Retry when the backend cannot be reached or throws (default true).'),
    backoff: Duration.default(0.025).describe(
      'Base back-off: retry n waits a random time up to base x 2^(n-1) (default 25ms).',
    ),
    maxBackoff: Duration.optional().describe('Longest back-off (default 10x backoff).'),
    unsafeMethods: z
      .boolean()
      .default(false)
      .describe('Also retry POST and PATCH (default false: only idempotent methods).'),
    maxBodyBytes: z
      .number()
      .int()
      .min(0)
      .max(16 * 1024 * 1024)
      .default(64 * 1024)
      .describe('Largest request body buffered for replay (default 64 KiB); a larger or unsized body is not retried.'),
  })
  .describe('Retries, as Gateway API HTTPRouteRetry.');

const HashSource = z
  .string()
  .regex(
    /^(header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[!#$%&'*+.^_`|~0-9A-Za-z-]+|claim:[^\s]+)$/,
    'must be header:<name>, cookie:<name> or claim:<name>',
  );

export const TrafficPolicy = z
  .strictObject({
    loadBalancer: z
      .strictObject({
        policy: z
          .enum(['RoundRobin', 'LeastRequest', 'Random', 'ConsistentHash'], {
            error: 'must be RoundRobin, LeastRequest, Random or ConsistentHash',
          })
          .default('RoundRobin')
          .describe(
            "How a version's endpoints share its requests: RoundRobin (smooth weighted, default), LeastRequest (power of two choices), Random (by weight), ConsistentHash (ring hash on hashOn).",
          ),
        hashOn: HashSource.optional().describe(
          'ConsistentHash only: the request value that picks the endpoint. A request without it goes by round robin.',
        ),
      })
      .superRefine((lb, ctx) => {
        if ((lb.policy === 'ConsistentHash') !== (lb.hashOn !== undefined))
          ctx.addIssue({
            code: 'custom',
            path: ['hashOn'],
            message: 'hashOn goes with policy ConsistentHash, and ConsistentHash needs it',
          });
      })
      .prefault({}),
    timeouts: Timeouts.optional().describe('Defaults for every call to this service; a route may set its own.'),
    retry: Retry.optional().describe('Default retries for every call to this service; a route may set its own.'),
    retryBudget: z
      .strictObject({
        ratio: z.number().min(0).max(10).default(0.2).describe('Retries as a share of requests (default 0.2).'),
        minPerSecond: z
          .number()
          .min(0)
          .default(10)
          .describe('Retries allowed per second whatever the load (default 10).'),
        ttl: Duration.default(10).describe('Window the ratio is counted over (default 10s).'),
      })
      .prefault({})
      .describe("Caps this service's retries, per isolate (Linkerd's defaults)."),
    outlierDetection: z
      .strictObject({
        consecutive5xx: z.number().int().min(1).default(5).describe('Failures in a row that eject (default 5).'),
        interval: Duration.default(10).describe(
          'Time in rotation that lowers the ejection count by one (default 10s).',
        ),
        baseEjectionTime: Duration.default(30).describe('First ejection; the nth lasts n times as long (default 30s).'),
        maxEjectionTime: Duration.default(300).describe('Longest ejection (default 300s).'),
        maxEjectionPercent: z
          .number()
          .min(0)
          .max(100)
          .default(10)
          .describe("Most of a version's endpoints out at once, at least one (default 10)."),
      })
      .optional()
      .describe("Envoy's consecutive-5xx outlier detection per endpoint. Absent: off."),
    maxRequestsPerEndpoint: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'Circuit breaker: requests in flight per endpoint per isolate; over it, another endpoint or 503. Absent: no cap.',
      ),
  })
  .describe('How calls to this service are balanced, timed out, retried and ejected.');

export const Service = z
  .strictObject({
    backends: z.array(Backend).min(1, 'a service needs at least one backend'),
    policy: ServicePolicy.prefault({}),
    traffic: TrafficPolicy.prefault({}),
  })
  .describe('A service and the backends (versions) that serve it.');

const AbsPath = z
  .string()
  .min(1)
  .max(2048)
  .regex(/^\//, 'must start with "/"')
  .refine((p) => !/[?#\s]/.test(p), 'must not contain "?", "#" or whitespace');

const PathMatch = z
  .strictObject({
    exact: AbsPath.optional().describe('Matches this path only.'),
    prefix: AbsPath.optional().describe('Matches this path and everything below it, by whole segments.'),
    pattern: AbsPath.optional().describe('path-to-regexp pattern, e.g. /users/:id or /files/*rest.'),
  })
  .superRefine((p, ctx) => {
    const n = Number(p.exact !== undefined) + Number(p.prefix !== undefined) + Number(p.pattern !== undefined);
    if (n !== 1)
      ctx.addIssue({ code: 'custom', message: 'a path match needs exactly one of "exact", "prefix" or "pattern"' });
  });

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
const Method = z.enum(METHODS, { error: `must be one of ${METHODS.join(', ')}` });

const HeaderName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a valid HTTP header name');

const ValueMatch = z.union([z.string(), z.strictObject({ regex: z.string().min(1) })], {
  error: 'must be a string (exact match) or { regex: "..." }',
});

export const Match = z
  .strictObject({
    path: PathMatch.optional(),
    method: z
      .union([Method, z.array(Method).min(1)], {
        error: `must be an HTTP method or a list of them (${METHODS.join(', ')})`,
      })
      .optional(),
    headers: z.record(HeaderName, ValueMatch).optional().describe('All must match; names are case-insensitive.'),
    query: z
      .record(z.string().min(1), ValueMatch)
      .optional()
      .describe('All must match (first value of each parameter).'),
  })
  .describe('All conditions in one match must hold; a route matches if any of its matches does.');

const Hostname = z
  .string()
  .max(253)
  .regex(
    /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'must be a lowercase hostname, optionally starting with "*." (no port)',
  );

const Rewrite = z
  .strictObject({
    pathPrefix: AbsPath.optional().describe('Replaces the matched path prefix (prefix matches only).'),
    path: AbsPath.optional().describe('Replaces the whole path.'),
    hostname: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a lowercase hostname')
      .optional()
      .describe('The host a binding backend sees (URL backends are reached at their own host).'),
  })
  .superRefine((r, ctx) => {
    if (r.pathPrefix !== undefined && r.path !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'a rewrite takes at most one of "pathPrefix" or "path"' });
    }
    if (r.pathPrefix === undefined && r.path === undefined && r.hostname === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a rewrite needs "pathPrefix", "path" or "hostname"' });
    }
  });

/** A header a route's filters may change on the request: not the mesh's own, not credentials or framing. */
const ModifiableHeader = HeaderName.refine(
  (n) => !n.toLowerCase().startsWith(MESH_HEADER_PREFIX) && !RESERVED_CLAIM_HEADERS.has(n.toLowerCase()),
  'is set by the mesh or carries credentials, framing or forwarding: a filter may not change it',
);

/** Gateway API RequestHeaderModifier / ResponseHeaderModifier: the same fields, names case-insensitive. */
const HeaderModifier = z
  .strictObject({
    set: z
      .array(z.strictObject({ name: ModifiableHeader, value: z.string() }))
      .optional()
      .describe('Replace (or add) these headers.'),
    add: z
      .array(z.strictObject({ name: ModifiableHeader, value: z.string() }))
      .optional()
      .describe('Append these values ("a" then "b" gives "a,b").'),
    remove: z.array(ModifiableHeader).optional().describe('Remove these headers.'),
  })
  .describe('Header edits, applied in the order remove, set, add (Gateway API HTTPHeaderFilter).');

/** One entry of a weighted split; its header edits apply after the route's (Gateway API backendRef filters). */
const BackendRef = z.strictObject({
  service: ServiceName,
  version: Version.optional(),
  weight: Weight.optional(),
  requestHeaders: HeaderModifier.optional().describe("Edits to requests sent to this entry, after the route's."),
  responseHeaders: HeaderModifier.optional().describe("Edits to this entry's responses, after the route's."),
});

/** Gateway API RequestRedirect. */
const Redirect = z
  .strictObject({
    scheme: z.enum(['http', 'https'], { error: 'must be http or https' }).optional(),
    hostname: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a lowercase hostname')
      .optional(),
    port: z.number().int().min(1).max(65535).optional(),
    path: z
      .union([z.strictObject({ replaceFullPath: AbsPath }), z.strictObject({ replacePrefixMatch: AbsPath })], {
        error: 'must be { replaceFullPath: /p } or { replacePrefixMatch: /p }',
      })
      .optional(),
    statusCode: z
      .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)], {
        error: 'must be 301, 302, 303, 307 or 308',
      })
      .default(302),
  })
  .describe(
    "Answer with a redirect instead of forwarding; unset parts keep the request's (Gateway API RequestRedirect).",
  );

/** What a route answers when its backends give none (graceful degradation). */
const Fallback = z
  .union(
    [
      z.strictObject({
        status: z.number().int().min(200).max(599).default(200),
        body: z
          .string()
          .max(64 * 1024)
          .default(''),
        contentType: z.string().min(1).default('text/plain; charset=utf-8'),
      }),
      z.strictObject({ service: ServiceName, version: Version.optional() }),
    ],
    { error: 'must be { status, body, contentType } or { service, version }' },
  )
  .describe(
    "Served when no backend answered: nothing in rotation (503 no_backend, no_healthy_backend), unreachable (502) or timed out (504). A backend's own 5xx passes through.",
  );

const Origin = z
  .string()
  .regex(
    /^(\*|https?:\/\/(\*\.)?[a-z0-9.-]+(:\d+)?)$/,
    'must be "*" or scheme://host[:port], optionally with a "*." host wildcard',
  );

/** CORS, answered at the gateway (Gateway API HTTPCORSFilter's fields). */
const Cors = z
  .strictObject({
    allowOrigins: z.array(Origin).min(1).describe('Origins allowed; "*" any (not with allowCredentials).'),
    allowMethods: z.array(Method).min(1).default(['GET', 'HEAD', 'POST']).describe('Default GET, HEAD, POST.'),
    allowHeaders: z
      .array(HeaderName)
      .default([])
      .describe('Request headers a browser may send beyond the safelisted ones.'),
    exposeHeaders: z
      .array(HeaderName)
      .default([])
      .describe('Response headers a page may read beyond the safelisted ones.'),
    maxAge: Duration.default(5).describe('How long a browser may cache a preflight answer (default 5s).'),
    allowCredentials: z.boolean().default(false).describe('Allow cookies and Authorization (default false).'),
  })
  .superRefine((c, ctx) => {
    if (c.allowCredentials && c.allowOrigins.includes('*'))
      ctx.addIssue({
        code: 'custom',
        path: ['allowOrigins'],
        message: '"*" cannot go with allowCredentials: list the origins (browsers refuse the combination)',
      });
  })
  .describe('Cross-origin requests from browsers: preflights answered here, allowed origins told on every answer.');

const Percent = z.number().min(0).max(100);

/** Gateway API RequestMirror: a copy of a share of the route's requests, its answer discarded. */
const Mirror = z
  .strictObject({
    service: ServiceName,
    version: Version.optional(),
    percent: Percent.default(100).describe('Share of requests copied (default 100).'),
  })
  .describe(
    'Copies requests to another service (same path, headers and a body of at most 64 KiB with a Content-Length); its answer is discarded and never delays the real one.',
  );

/** Fault injection for resilience testing (Istio's HTTPFaultInjection, Envoy's fault filter). */
const Fault = z
  .strictObject({
    delay: z
      .strictObject({ percent: Percent, fixedDelay: Duration })
      .optional()
      .describe('Hold this share of requests this long before forwarding.'),
    abort: z
      .strictObject({ percent: Percent, status: z.number().int().min(400).max(599) })
      .optional()
      .describe('Answer this share of requests with this status, not forwarding them.'),
  })
  .describe('Injected faults: a share of requests delayed or aborted at the gateway.');

const JWS_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'HS256',
  'HS384',
  'HS512',
] as const;
const Algorithm = z.enum(JWS_ALGS, { error: `must be one of ${JWS_ALGS.join(', ')} ("none" is never accepted)` });

export const TokenSource = z
  .strictObject({
    header: HeaderName.optional().describe(
      'Header holding the token; for Authorization the Bearer scheme is required.',
    ),
    cookie: z.string().min(1).optional().describe('Cookie holding the token.'),
  })
  .superRefine((t, ctx) => {
    if ((t.header === undefined) === (t.cookie === undefined))
      ctx.addIssue({ code: 'custom', message: 'a token source needs exactly one of "header" or "cookie"' });
  })
  .describe('Where the token is read from; default: Authorization: Bearer.');

export const Issuer = z
  .strictObject({
    issuer: z.string().min(1).describe('Expected "iss" claim.'),
    audiences: z.array(z.string().min(1)).min(1).describe('Accepted "aud" values (one must match).'),
    algorithms: z.array(Algorithm).min(1).describe('Explicit allowlist; the token\'s own "alg" is never trusted.'),
    jwksUri: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('JWKS endpoint; the only URL ever fetched for this issuer.'),
    jwks: JwksSource.optional(),
    secret: z
      .strictObject({ env: EnvName })
      .optional()
      .describe('HMAC shared secret from an env var / wrangler secret (HS* only).'),
    clockSkew: Duration.default(30).describe('Tolerance for exp/nbf/iat; default 30s.'),
    typ: z.string().min(1).optional().describe('Required "typ" header, e.g. at+jwt.'),
    cache: z
      .strictObject({
        minTtl: Duration.default(60).describe('Shortest JWKS cache time, whatever Cache-Control says (default 1m).'),
        maxTtl: Duration.default(86_400).describe('Longest JWKS cache time (default 24h).'),
        defaultTtl: Duration.default(600).describe('Cache time when the JWKS response has no max-age (default 10m).'),
        staleFor: Duration.default(3600).describe(
          'Keep verifying with the last good keys this long after they expire while the endpoint fails (default 1h).',
        ),
        refetchCooldown: Duration.default(30).describe(
          'At most one refetch per this interval for unknown kids (default 30s).',
        ),
      })
      .prefault({})
      .describe('Remote JWKS caching (jwksUri only).'),
  })
  .superRefine((i, ctx) => {
    const sources = Number(i.jwksUri !== undefined) + Number(i.jwks !== undefined) + Number(i.secret !== undefined);
    if (sources !== 1)
      ctx.addIssue({ code: 'custom', message: 'an issuer needs exactly one of "jwksUri", "jwks" or "secret"' });
    const hmac = i.algorithms.filter((a) => a.startsWith('HS'));
    if (i.secret !== undefined && hmac.length !== i.algorithms.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['algorithms'],
        message: 'an issuer with a shared "secret" accepts HS256/HS384/HS512 only',
      });
    }
    if (i.secret === undefined && hmac.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['algorithms'],
        message: 'HS* algorithms need a shared "secret"; with public keys they would allow algorithm confusion',
      });
    }
  })
  .describe('A token issuer (identity provider) the gateway trusts.');

const ClaimValue = z.union([z.string(), z.number(), z.boolean()]);

export const RouteAuth = z
  .strictObject({
    mode: z.enum(['required', 'optional', 'off']).default('required').describe('Default required.'),
    issuers: z.array(z.string().min(1)).min(1).optional().describe('Issuer names accepted here; default all.'),
    scopes: z.array(z.string().min(1)).min(1).optional().describe('All must be granted (scope / scp claims).'),
    claims: z
      .record(z.string().min(1), z.union([ClaimValue, z.array(ClaimValue).min(1)]))
      .optional()
      .describe('Required claim values; a list means any one of them.'),
    token: TokenSource.optional().describe('Where the token is read from; default: auth.token.'),
    forwardToken: z.boolean().default(true).describe('Pass the token on to the backend (default true).'),
  })
  .superRefine((a, ctx) => {
    if (a.mode !== 'required' && (a.scopes || a.claims)) {
      ctx.addIssue({ code: 'custom', path: ['mode'], message: '"scopes" and "claims" need mode: required' });
    }
  });

export const Route = z
  .strictObject({
    name: RouteName,
    hostnames: z.array(Hostname).min(1).optional().describe('Exact or "*." wildcard hosts; absent matches any host.'),
    matches: z.array(Match).min(1).optional().describe('Absent matches every request (prefix "/").'),
    service: ServiceName.optional().describe('Send matching requests to this service.'),
    version: Version.optional().describe('Only this version of the service (with "service").'),
    backendRefs: z.array(BackendRef).min(1).optional().describe('Weighted split across services/versions.'),
    sticky: HashSource.optional().describe(
      'Sticky split: header:<name>, cookie:<name> or claim:<name>; the same value always gets the same backendRef and version (by their weights). A request without it is split by chance.',
    ),
    rewrite: Rewrite.optional(),
    requestHeaders: HeaderModifier.optional().describe('Edits to the request before it is forwarded.'),
    responseHeaders: HeaderModifier.optional().describe('Edits to the response before it is returned.'),
    redirect: Redirect.optional().describe('Redirect instead of forwarding (then no service or backendRefs).'),
    fault: Fault.optional(),
    fallback: Fallback.optional(),
    cors: Cors.optional(),
    mirror: Mirror.optional(),
    timeouts: Timeouts.optional().describe("For this route's requests; absent: the service's."),
    retry: Retry.optional().describe("For this route's requests; absent: the service's (none unless it sets them)."),
    auth: RouteAuth.optional().describe('End-user authentication for this route; absent = off.'),
    rateLimits: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Rate-limit policies applied here, all of which must admit a request.'),
  })
  .superRefine((r, ctx) => {
    const targets =
      Number(r.service !== undefined) + Number(r.backendRefs !== undefined) + Number(r.redirect !== undefined);
    if (targets !== 1) {
      ctx.addIssue({ code: 'custom', message: 'a route needs exactly one of "service", "backendRefs" or "redirect"' });
    }
    if (r.version !== undefined && r.service === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['version'],
        message: '"version" goes with "service"; in "backendRefs" set it per entry',
      });
    }
  });

const ClaimHeaderName = HeaderName.refine(
  (h) => !RESERVED_CLAIM_HEADERS.has(h.toLowerCase()),
  'is reserved (credentials, mesh identity, tracing or forwarding): pick another header name',
);

export const Auth = z
  .strictObject({
    issuers: z
      .record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-"'), Issuer)
      .default({})
      .describe('Token issuers by name. Absent: none (routes cannot require auth).'),
    token: TokenSource.default({ header: 'authorization' }).describe(
      'Where routes read the token unless they say otherwise; default: Authorization: Bearer.',
    ),
    claimHeaders: z
      .record(z.string().min(1), ClaimHeaderName)
      .default({ ...DEFAULT_CLAIM_HEADERS })
      .describe(
        'Verified claims sent to backends as headers; "scopes" is the granted scopes. Default sub, scopes, iss to x-mesh-*.',
      ),
    verifiedCache: z
      .strictObject({
        maxEntries: z
          .number()
          .int()
          .min(0)
          .max(1_000_000)
          .default(10_000)
          .describe('0 turns the cache off. Default 10000.'),
        maxTtl: Duration.default(300).describe(
          'Longest a verified token is trusted without re-verifying (default 5m).',
        ),
      })
      .prefault({}),
  })
  .describe('End-user JWT authentication at the gateway.');

export const Identity = z
  .strictObject({
    publicKeys: JwksSource.default({ env: 'MESH_PUBLIC_KEYS' }).describe(
      'Public keys of every mesh member; default { env: MESH_PUBLIC_KEYS }.',
    ),
    signingKey: z
      .strictObject({ env: EnvName })
      .default({ env: 'MESH_SIGNING_KEY' })
      .describe("This worker's private key; default { env: MESH_SIGNING_KEY }."),
    tokenTtl: Duration.pipe(
      z
        .number()
        .min(30, 'must be at least 30s (tokens are reused until 15s before expiry)')
        .max(3600, 'must be at most 1h'),
    )
      .default(60)
      .describe('Lifetime of identity tokens (default 60s, 30s to 1h).'),
  })
  .describe('Service identity between mesh members.');

export const RateLimitStore = z
  .strictObject({
    binding: BindingName.default('MESH_RATE_LIMITER').describe(
      'Durable Object namespace binding of the RateLimiter class (default MESH_RATE_LIMITER).',
    ),
    partitions: Partitions.optional().describe(
      'Each policy keeps its buckets in this many Durable Objects, each holding many keys: a new key costs no new object, and an isolate decides many keys in one call, but every key is decided where its partition lives (no locality). Absent (default): one object per key, near where the key is used. docs/rate-limits.md.',
    ),
  })
  .describe('Where rate-limit buckets live.');

export const Registry = z
  .strictObject({
    heartbeatTtl: Duration.pipe(z.number().min(1, 'must be at least 1s'))
      .default(90)
      .describe('An instance without a heartbeat for this long expires and leaves rotation (default 90s).'),
    probeInterval: Duration.pipe(z.number().min(1, 'must be at least 1s'))
      .default(15)
      .describe("How often the registry probes instances' health endpoints (default 15s)."),
    refreshInterval: Duration.pipe(z.number().min(0.1, 'must be at least 100ms'))
      .default(5)
      .describe('How often gateways and services look for a new snapshot in KV (default 5s).'),
  })
  .describe('Service registry and control plane settings.');

export const Admin = z
  .strictObject({
    issuers: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Issuers (auth.issuers) whose tokens may use the admin API. Absent: only MESH_ADMIN_TOKEN.'),
    scope: z.string().min(1).default('mesh:admin').describe('Scope an admin token must hold (default mesh:admin).'),
    dashboardHost: z
      .string()
      .max(253)
      .regex(
        /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
        'must be a lowercase hostname (no port)',
      )
      .optional()
      .describe(
        "The only host the dashboard (/_mesh/ui) and its session cookie work on, e.g. mesh-admin.example.com: one no route's backend serves pages on, since a page on the dashboard's origin could act with a logged-in operator's session. Absent: the dashboard is served only to this machine (127.0.0.1, ::1, localhost) and under `npm run dev`.",
      ),
    audience: z
      .string()
      .min(1)
      .default('meshwork-admin')
      .describe(
        'The "aud" an admin token must carry (default meshwork-admin). Not one of the issuers\' user audiences: an admin token is never a user token, and the gateway never forwards one.',
      ),
  })
  .describe('Who may use the control-plane API besides holders of MESH_ADMIN_TOKEN.');

const ClientIpSource = z
  .union(
    [
      z.literal('none').describe('No client address: "ip" key parts have no value.'),
      z.strictObject({ header: HeaderName.describe('A header only the platform or a trusted proxy sets.') }),
      z.strictObject({
        forwardedFor: z
          .number()
          .int()
          .min(1)
          .max(16)
          .describe('The nth address from the right of X-Forwarded-For: 1 = the one your proxy appended.'),
      }),
    ],
    { error: 'must be "none", { header: <name> } or { forwardedFor: <n> }' },
  )
  .default({ header: 'cf-connecting-ip' })
  .describe(
    "Where the gateway takes the client address from (ip rate-limit keys, X-Forwarded-For). Default CF-Connecting-IP, which only Cloudflare's edge sets; under `npm run dev` clients can send it, so it is ignored there.",
  );

export const Network = z
  .strictObject({
    clientIp: ClientIpSource,
    allowPrivateBackends: z
      .boolean()
      .default(false)
      .describe(
        'Allow URL backends at private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7). Default false.',
      ),
    allowLoopbackBackends: z
      .boolean()
      .default(false)
      .describe(
        'Allow URL backends on this machine (127/8, ::1, localhost). Default false; always allowed under `npm run dev`.',
      ),
  })
  .describe('Where client addresses come from and which addresses URL backends may have.');

const Ratio = z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1');

export const Observability = z
  .strictObject({
    accessLog: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'One JSON line per request at the gateway and per east-west call in the wrapper (default true): `wrangler tail` and Workers Logs show them.',
          ),
        user: z
          .enum(['sub', 'hashed', 'omit'])
          .default('sub')
          .describe(
            "How the user's `sub` appears: as it is (default), `hashed` (the first 16 hex digits of its SHA-256: one user's lines still group, the name is not written), or `omit`.",
          ),
        clientIp: z
          .boolean()
          .default(false)
          .describe("Log the client's address at the gateway (default false: it is personal data in many places)."),
        successSampling: Ratio.default(1).describe(
          'Share of successful requests logged, 0 to 1 (default 1: every request). Errors (status 400 and up) and every answer the mesh made itself are always logged. Each line costs the worker a console call; at high rates a share of the successes is often enough.',
        ),
      })
      .prefault({})
      .describe('Access logs. Never written: tokens, keys, secrets, header values, query values.'),
    metrics: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'Count requests and mesh events and serve them at /_mesh/metrics (default true). Each isolate sends its counts to the MESH_TELEMETRY Durable Object (gateway) or the Telemetry entrypoint (services), batched, after the response.',
          ),
        names: z
          .enum(['meshwork', 'istio'])
          .default('meshwork')
          .describe(
            '`meshwork` (default): meshwork_requests_total, meshwork_request_duration_seconds, ... `istio`: istio_requests_total, istio_request_duration_milliseconds, ... exactly as Istio names them, for dashboards and alerts written for Istio. The labels are the same either way.',
          ),
        flushInterval: Duration.pipe(z.number().min(0.05, 'must be at least 50ms').max(10, 'must be at most 10s'))
          .default(1)
          .describe(
            'How long an isolate gathers counts before sending them (default 1s): the delay before a request shows in /_mesh/metrics, and one store call per isolate per interval.',
          ),
      })
      .prefault({})
      .describe('Prometheus metrics, aggregated across every isolate of the mesh.'),
    tracing: z
      .strictObject({
        collector: BackendUrl.optional().describe(
          'OTLP/HTTP collector: spans are POSTed as JSON to <collector>/v1/traces (a URL already ending in /v1/traces is used as it is). Absent (default): no spans are exported; trace context is still passed on.',
        ),
        sampling: Ratio.default(0.01).describe(
          "Share of new traces recorded, 0 to 1 (default 0.01, Istio's default of 1%). A request that comes with a traceparent follows its caller's decision (the sampled flag).",
        ),
        headers: z
          .record(HeaderName, z.strictObject({ env: EnvName }))
          .default({})
          .describe('Headers sent to the collector, each from a secret, e.g. { x-honeycomb-team: { env: OTLP_KEY } }.'),
        flushInterval: Duration.pipe(z.number().min(0.05, 'must be at least 50ms').max(10, 'must be at most 10s'))
          .default(1)
          .describe('How long an isolate gathers spans before exporting them (default 1s).'),
      })
      .prefault({})
      .describe('W3C trace context and OTLP span export.'),
  })
  .describe('Access logs, metrics and traces (docs/observability.md).');

const PolicyName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-"');

/** The top-level sections, each as one file may give it. */
const SECTION_SCHEMAS = {
  services: z.record(ServiceName, Service),
  routes: z.array(Route),
  auth: Auth,
  identity: Identity,
  rateLimits: z.record(PolicyName, RateLimitPolicy),
  rateLimitStore: RateLimitStore,
  registry: Registry,
  admin: Admin,
  network: Network,
  observability: Observability,
};

export type SectionName = keyof typeof SECTION_SCHEMAS;

/**
 * How each section combines across the files of a routes directory, and how `diff` reports it.
 *  - concat: entries from every file, in file order (files by name);
 *  - byName: entries from every file, each name defined once;
 *  - once:   the whole section in one file only;
 *  - fields: each field in one file only, except the fields listed as byName.
 * Adding a section to SECTION_SCHEMAS without a rule here does not compile.
 */
export type SectionRule =
  | { merge: 'concat' }
  | { merge: 'byName'; what: string }
  | { merge: 'once' }
  | { merge: 'fields'; byName: Readonly<Record<string, string>> };

export const SECTIONS: { readonly [K in SectionName]: SectionRule } = {
  services: { merge: 'byName', what: 'service' },
  routes: { merge: 'concat' },
  auth: { merge: 'fields', byName: { issuers: 'issuer' } },
  identity: { merge: 'once' },
  rateLimits: { merge: 'byName', what: 'rate limit' },
  rateLimitStore: { merge: 'once' },
  registry: { merge: 'once' },
  admin: { merge: 'once' },
  network: { merge: 'fields', byName: {} },
  observability: { merge: 'once' },
};

/** One file under routes/. Every section is optional so a config can be split across files. */
export const MeshFile = z
  .strictObject({
    services: SECTION_SCHEMAS.services.optional(),
    routes: SECTION_SCHEMAS.routes.optional(),
    auth: SECTION_SCHEMAS.auth.optional(),
    identity: SECTION_SCHEMAS.identity.optional(),
    rateLimits: SECTION_SCHEMAS.rateLimits.optional(),
    rateLimitStore: SECTION_SCHEMAS.rateLimitStore.optional(),
    registry: SECTION_SCHEMAS.registry.optional(),
    admin: SECTION_SCHEMAS.admin.optional(),
    network: SECTION_SCHEMAS.network.optional(),
    observability: SECTION_SCHEMAS.observability.optional(),
  } satisfies { [K in SectionName]: z.ZodType })
  .describe('meshwork routes file (routes/*.yaml)');

/**
 * The whole mesh after all files are merged: every section present, every default filled in.
 * validate.ts produces it; parsing an already valid config again gives the same config.
 */
export const Config = z.strictObject({
  services: SECTION_SCHEMAS.services.default({}),
  routes: SECTION_SCHEMAS.routes.default([]),
  auth: SECTION_SCHEMAS.auth.prefault({}),
  identity: SECTION_SCHEMAS.identity.prefault({}),
  rateLimits: SECTION_SCHEMAS.rateLimits.default({}),
  rateLimitStore: SECTION_SCHEMAS.rateLimitStore.prefault({}),
  registry: SECTION_SCHEMAS.registry.prefault({}),
  admin: SECTION_SCHEMAS.admin.prefault({}),
  network: SECTION_SCHEMAS.network.prefault({}),
  observability: SECTION_SCHEMAS.observability.prefault({}),
} satisfies { [K in SectionName]: z.ZodType });

export type BackendSpec = z.output<typeof Backend>;
export type ServiceSpec = z.output<typeof Service>;
export type TimeoutsSpec = z.output<typeof Timeouts>;
export type RetrySpec = z.output<typeof Retry>;
export type TrafficSpec = z.output<typeof TrafficPolicy>;
export type HeaderModifierSpec = z.output<typeof HeaderModifier>;
export type RedirectSpec = z.output<typeof Redirect>;
export type FallbackSpec = z.output<typeof Fallback>;
export type CorsSpec = z.output<typeof Cors>;
export type MirrorSpec = z.output<typeof Mirror>;
export type MatchSpec = z.output<typeof Match>;
export type RouteSpec = z.output<typeof Route>;
export type MeshFileSpec = z.output<typeof MeshFile>;
export type ValueMatchSpec = z.output<typeof ValueMatch>;

export type IssuerSpec = z.output<typeof Issuer>;
export type AuthSpec = z.output<typeof Auth>;
export type IdentitySpec = z.output<typeof Identity>;
export type RouteAuthSpec = z.output<typeof RouteAuth>;
export type TokenSourceSpec = z.output<typeof TokenSource>;
export type JwksSourceSpec = z.output<typeof JwksSource>;
export type ServicePolicySpec = z.output<typeof ServicePolicy>;
export type RateLimitPolicySpec = z.output<typeof RateLimitPolicy>;
export type RegistrySpec = z.output<typeof Registry>;
export type AdminSpec = z.output<typeof Admin>;
export type NetworkSpec = z.output<typeof Network>;
export type ObservabilitySpec = z.output<typeof Observability>;

/** The whole mesh after all files are merged and cross-checked, defaults filled in. */
export type MeshConfig = z.output<typeof Config>;

/**
 * The form of `MeshBundle.config`. Bundles of an older form (built by an earlier meshwork, e.g. a
 * snapshot in KV from before an upgrade) are parsed through `Config` again before use.
 */
export const CONFIG_FORMAT = 3;

/** What the build ships and the control plane applies: a validated config and its version. */
export interface MeshBundle {
  version: string;
  config: MeshConfig;
  /** CONFIG_FORMAT of `config`; absent in bundles from before formats were recorded. */
  format?: number;
  /** The routes files it was built from, for diffs and for reading back what runs. */
  sources?: Array<{ name: string; text: string }>;
}
