/**
 * JSON Schema (draft-07) for routes/*.yaml, for editors (yaml-language-server, through the
 * modeline at the top of each routes file). It is generated from the zod schema so the two cannot
 * drift, and then given what zod checks in code and JSON Schema can still say: the refine and
 * superRefine rules of schema.ts, and the checks validate.ts makes within one file. Each rule is
 * added at the place the generated schema has for it (a path that no longer exists fails the
 * build: see `at`), and test/unit/config/json-schema.test.ts holds, for each rule, a document that
 * both `meshwork validate` and this schema refuse.
 *
 * Encoded here (beyond what z.toJSONSchema emits):
 *  - "exactly one of": a backend's binding / url; a path match's exact / prefix / pattern; a
 *    route's service / backendRefs / redirect; a token source's header / cookie; an issuer's
 *    jwksUri / jwks / secret;
 *  - "at most one" / "at least one": a rewrite's pathPrefix / path, and at least one of its fields;
 *  - fields that go together or exclude each other: allowAnonymous not with allowCallers;
 *    a route's version only with service; loadBalancer hashOn exactly with ConsistentHash; rate
 *    limit lease settings only with mode: lease; auth scopes / claims only with mode: required;
 *    "*" origins not with allowCredentials; HS* algorithms exactly with a shared secret;
 *    pathPrefix rewrites only on routes whose path matches are prefix matches;
 *  - URLs: http(s) only (backends, tracing.collector, jwksUri); backend and collector URLs without
 *    a query, fragment or credentials; backends and jwksUri never at a cloud metadata service, a
 *    link-local or a multicast address (as written literally: see below); a URL backend without a
 *    "name" whose host cannot name an endpoint;
 *  - names: "gateway" is not a service name; header filters may not touch x-mesh-* or reserved
 *    headers, claims may not be written to reserved headers (case-insensitive); paths without
 *    "?", "#" or whitespace; match paths not under /_mesh/; header and query regexes must compile;
 *  - ranges of durations given as strings ("10s", "0.5m"): tokenTtl 30s..1h, registry intervals,
 *    flush intervals 50ms..10s, a rate limit's period above 0;
 *  - a gcra policy without burst (so a burst of 1) may not cost more than 1, nor have an override
 *    multiplier below 0.5 (its burst would round to 0);
 *  - numbers are finite (YAML's .inf is refused).
 *
 * Not encoded, because JSON Schema cannot say it (`meshwork validate` still checks each):
 *  - anything across files or sections, or naming something defined elsewhere: a route naming an
 *    undefined service, or a version the service does not have; unknown rate-limit names (routes,
 *    policy.rateLimits); a route's rate limit using "caller" or callers (depends on the policy's
 *    definition); unknown issuers (routes, admin.issuers) and an issuer that accepts the admin
 *    audience; a route requiring auth while no auth.issuers are configured; unknown
 *    allowCallers / rate limit callers; a name (route, service, policy, issuer, section field)
 *    given twice across files, and route names given twice even within one file (JSON Schema has
 *    no uniqueness by a field); two issuers with the same "issuer" URL;
 *  - comparisons between two values: timeouts.backendRequest <= timeouts.request; a rate limit's
 *    cost <= its burst (or its limit, when burst is absent, and any explicit burst of gcra); an
 *    override's burst x multiplier >= cost;
 *  - computed identities: two backends of one version that are the same endpoint (the default
 *    name comes from the binding or the URL's host);
 *  - URL backends at private or loopback addresses: allowed or not by network.allowPrivateBackends
 *    / allowLoopbackBackends (possibly in another file) and by dev mode;
 *  - what only a parser knows: path-to-regexp pattern syntax; URL syntax exactly as the WHATWG
 *    parser reads it (this schema uses format "uri"), and so any other spelling of a refused
 *    address (hexadecimal, octal or integer IPv4, expanded IPv6, IDN) and a default endpoint name
 *    longer than 253 characters; YAML's .nan where a number goes; a duration written to
 *    within floating-point rounding of a bound ("0.008333333333333333h" for 30s): validate
 *    multiplies in floating point, the patterns here compare exactly;
 *  - YAML itself: duplicate keys, the alias expansion limit.
 */
import { z } from 'zod';
import { MESH_HEADER_PREFIX, RESERVED_CLAIM_HEADERS } from '../core/header-names.ts';
import { MeshFile } from './schema.ts';

type Json = Record<string, unknown>;

export function routesJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(MeshFile, { io: 'input', unrepresentable: 'any', target: 'draft-07' });
  // Unshared: zod may hand the same object to several places; each place gets its own rules.
  const schema = JSON.parse(JSON.stringify(generated)) as Json;
  addRules(schema);
  finite(schema);
  addDescriptions(schema);
  return {
    ...schema,
    $id: 'https://meshwork.dev/schema/routes.schema.json',
    title: 'meshwork routes file',
  };
}

/**
 * The node at `path` in the generated schema, in a short notation: a name is a property, `[]` the
 * items of an array, `{}` the values of a map, `<>` its keys, `|n` the nth branch of an anyOf.
 * Throws if it is not there, so a schema.ts change that moves a field fails `npm run build:schema`
 * (and the test that compares the committed file) instead of dropping the rule silently.
 */
function at(root: Json, path: string): Json {
  let node: unknown = root;
  for (const seg of path.split('.')) {
    const n = node as Json | undefined;
    if (seg === '[]') node = n?.items;
    else if (seg === '{}') node = n?.additionalProperties;
    else if (seg === '<>') node = n?.propertyNames;
    else if (seg.startsWith('|')) node = (n?.anyOf as unknown[] | undefined)?.[Number(seg.slice(1))];
    else node = (n?.properties as Json | undefined)?.[seg];
    if (typeof node !== 'object' || node === null)
      throw new Error(`json-schema.ts: no "${path}" in the schema generated from schema.ts (at "${seg}")`);
  }
  return node as Json;
}

/** Adds `rule` to the node: every rule goes into allOf, so several never overwrite each other. */
function addRule(node: Json, rule: Json): void {
  node.allOf = [...((node.allOf as Json[] | undefined) ?? []), rule];
}

/**
 * Refuses strings matching `bad` (anchored with "^"), as a pattern with a negative lookahead
 * rather than `not`, so an editor shows the message instead of "matches a schema that is not
 * allowed".
 */
function refuse(node: Json, bad: string, message: string): void {
  if (!bad.startsWith('^')) throw new Error(`json-schema.ts: ${bad} is not anchored`);
  addRule(node, { pattern: `^(?!(?:${bad.slice(1)}))`, errorMessage: message });
}

const exactlyOne = (fields: readonly string[], message: string): Json => ({
  oneOf: fields.map((f) => ({ required: [f] })),
  errorMessage: message,
});

/** `[hH][tT]...`: JSON Schema patterns have no flags. */
function caseless(text: string): string {
  return [...text]
    .map((c) =>
      /[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'),
    )
    .join('');
}

/** Where the objects the rules are about sit in the generated schema (see `at`). */
const SERVICE = 'services.{}';
const BACKEND = `${SERVICE}.backends.[]`;
const ROUTE = 'routes.[]';
const MATCH_PATH = `${ROUTE}.matches.[].path`;
const ISSUER = 'auth.issuers.{}';
const POLICY = 'rateLimits.{}';
const HEADER_MODIFIERS = [
  `${ROUTE}.requestHeaders`,
  `${ROUTE}.responseHeaders`,
  `${ROUTE}.backendRefs.[].requestHeaders`,
  `${ROUTE}.backendRefs.[].responseHeaders`,
];

/** The scheme, case-insensitive, as zod's z.url({ protocol: /^https?$/ }) wants it: with "//". */
const HTTP_SCHEME = `^${caseless('http')}[sS]?://`;
/** Where the authority of a URL ends (WHATWG reads "\" as "/" in http(s) URLs). */
const AUTHORITY_END = '(?:[/?#\\\\]|$)';
/** userinfo@, if any. */
const USERINFO = '(?:[^/?#\\\\]*@)?';

/** http(s) URLs that put credentials in the userinfo (an empty "@" or ":@" carries none). */
const WITH_CREDENTIALS = `${HTTP_SCHEME}(?!:?@[^/?#\\\\@]*${AUTHORITY_END})[^/?#\\\\]*@`;

/**
 * Hosts refusedAddress (addresses.ts) refuses whatever network.* says: cloud metadata names and
 * addresses, link-local and multicast addresses, in the forms they are usually written in.
 */
const METADATA_NAMES = [
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
];
const NEVER_A_BACKEND = [
  `${HTTP_SCHEME}${USERINFO}(?:`,
  [
    '169\\.254\\.\\d{1,3}\\.\\d{1,3}\\.?', // link-local, 169.254.169.254 (metadata) among them
    '(?:22[4-9]|2[3-5]\\d)\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.?', // multicast and reserved (224/3)
    `(?:${METADATA_NAMES.map(caseless).join('|')})\\.?`,
    '\\[[fF][eE][89aAbB][0-9a-fA-F]:[0-9a-fA-F:.]*\\]', // fe80::/10
    '\\[[fF][fF][0-9a-fA-F]{2}:[0-9a-fA-F:.]*\\]', // ff00::/8
    '\\[[fF][dD]00:[eE][cC]2::254\\]', // AWS's IPv6 metadata endpoint
    '\\[::[fF]{4}:169\\.254\\.\\d{1,3}\\.\\d{1,3}\\]', // IPv4-mapped link-local
  ].join('|'),
  `)(?::\\d*)?${AUTHORITY_END}`,
].join('');

/**
 * A URL whose host[:port] can name an endpoint (ENDPOINT_NAME in core/endpoint.ts): starting and
 * ending alphanumeric, only "._~-" between, or a bracketed IPv6 address. Non-ASCII (an IDN, turned
 * into punycode) and %-escapes are left to the parser.
 */
const HOST_CHAR = '[A-Za-z0-9%]|[^\\x00-\\x7F]';
const NAMEABLE_HOST = [
  HTTP_SCHEME,
  USERINFO,
  `(?:(?:${HOST_CHAR})(?:(?:${HOST_CHAR}|[._~-])*(?:${HOST_CHAR}))?|\\[[0-9A-Fa-f:.]+\\])`,
  `(?::\\d*)?${AUTHORITY_END}`,
].join('');

function httpUrl(node: Json): void {
  addRule(node, { pattern: HTTP_SCHEME, errorMessage: 'must be an absolute http:// or https:// URL' });
}

function backendUrl(node: Json): void {
  httpUrl(node);
  addRule(node, { pattern: '^[^?#]*$', errorMessage: 'must not contain a query or fragment' });
  refuse(
    node,
    WITH_CREDENTIALS,
    'must not contain credentials (user:password@): they would be compiled into every bundle',
  );
}

function neverABackend(node: Json): void {
  refuse(node, NEVER_A_BACKEND, 'a cloud metadata service, link-local or multicast address is never a backend');
}

const HS = ['HS256', 'HS384', 'HS512'];

/** Header names, case-insensitive, as the `.refine`s of schema.ts compare them (lowercased). */
const RESERVED = [...RESERVED_CLAIM_HEADERS].map(caseless).join('|');
const RESERVED_HEADER = `^(?:${RESERVED})$`;
const UNMODIFIABLE_HEADER = `^(?:${caseless(MESH_HEADER_PREFIX)}.*|${RESERVED})$`;

function addRules(s: Json): void {
  // ServiceName: "gateway" names the edge gateway as a caller.
  for (const path of [
    `services.<>`,
    `${ROUTE}.service`,
    `${ROUTE}.backendRefs.[].service`,
    `${ROUTE}.fallback.|1.service`,
    `${ROUTE}.mirror.service`,
  ])
    refuse(at(s, path), '^gateway$', '"gateway" is reserved: it names the edge gateway as a caller');

  // Backend.
  const backend = at(s, BACKEND);
  addRule(backend, exactlyOne(['binding', 'url'], 'a backend needs exactly one of "binding" or "url"'));
  addRule(backend, {
    if: { required: ['url'], not: { required: ['name'] } },
    then: { properties: { url: { pattern: NAMEABLE_HOST } } },
    errorMessage: 'the URL\'s host cannot name an endpoint: give the backend a "name"',
  });
  backendUrl(at(s, `${BACKEND}.url`));
  neverABackend(at(s, `${BACKEND}.url`));
  backendUrl(at(s, 'observability.tracing.collector'));

  // ServicePolicy.
  addRule(at(s, `${SERVICE}.policy`), {
    if: { required: ['allowAnonymous'], properties: { allowAnonymous: { const: true } } },
    then: { not: { required: ['allowCallers'] } },
    errorMessage: 'allowAnonymous cannot go with allowCallers: any caller could drop its identity to get past the list',
  });

  // TrafficPolicy.loadBalancer.
  addRule(at(s, `${SERVICE}.traffic.loadBalancer`), {
    if: { required: ['policy'], properties: { policy: { const: 'ConsistentHash' } } },
    then: { required: ['hashOn'] },
    else: { not: { required: ['hashOn'] } },
    errorMessage: 'hashOn goes with policy ConsistentHash, and ConsistentHash needs it',
  });

  // RateLimitPolicy.
  const policy = at(s, POLICY);
  addRule(policy, {
    if: { required: ['lease'] },
    then: { required: ['mode'], properties: { mode: { const: 'lease' } } },
    errorMessage: '"lease" settings need mode: lease',
  });
  // gcra without burst has a burst of 1: a cost above it, or an override scaling it to 0, never passes.
  addRule(policy, {
    if: { required: ['algorithm'], properties: { algorithm: { const: 'gcra' } }, not: { required: ['burst'] } },
    then: {
      properties: {
        cost: { maximum: 1 },
        overrides: {
          additionalProperties: {
            if: { not: { required: ['burst'] } },
            then: { properties: { multiplier: { minimum: 0.5 } } },
          },
        },
      },
    },
    errorMessage: 'gcra without "burst" has a burst of 1: cost must be 1, and an override multiplier at least 0.5',
  });
  durationRange(at(s, `${POLICY}.period`), { above: '0' });

  // Paths (AbsPath): starting with "/", without "?", "#" or whitespace.
  for (const path of [
    `${MATCH_PATH}.exact`,
    `${MATCH_PATH}.prefix`,
    `${MATCH_PATH}.pattern`,
    `${ROUTE}.rewrite.pathPrefix`,
    `${ROUTE}.rewrite.path`,
    `${ROUTE}.redirect.path.|0.replaceFullPath`,
    `${ROUTE}.redirect.path.|1.replacePrefixMatch`,
  ]) {
    const node = at(s, path);
    if (node.pattern !== '^\\/') throw new Error(`json-schema.ts: ${path} is no longer a plain absolute path`);
    node.pattern = '^/[^?#\\s]*$';
  }
  for (const kind of ['exact', 'prefix', 'pattern'])
    refuse(
      at(s, `${MATCH_PATH}.${kind}`),
      '^/_mesh(/|$)',
      "paths under /_mesh/ are reserved for meshwork's own endpoints",
    );
  addRule(
    at(s, MATCH_PATH),
    exactlyOne(['exact', 'prefix', 'pattern'], 'a path match needs exactly one of "exact", "prefix" or "pattern"'),
  );
  for (const kind of ['headers', 'query']) at(s, `${ROUTE}.matches.[].${kind}.{}.|1.regex`).format = 'regex';

  // Rewrite.
  const rewrite = at(s, `${ROUTE}.rewrite`);
  addRule(rewrite, {
    not: { required: ['pathPrefix', 'path'] },
    errorMessage: 'a rewrite takes at most one of "pathPrefix" or "path"',
  });
  addRule(rewrite, {
    anyOf: [{ required: ['pathPrefix'] }, { required: ['path'] }, { required: ['hostname'] }],
    errorMessage: 'a rewrite needs "pathPrefix", "path" or "hostname"',
  });

  // Header filters and claim headers.
  for (const modifier of HEADER_MODIFIERS)
    for (const path of [`${modifier}.set.[].name`, `${modifier}.add.[].name`, `${modifier}.remove.[]`])
      refuse(
        at(s, path),
        UNMODIFIABLE_HEADER,
        'is set by the mesh or carries credentials, framing or forwarding: a filter may not change it',
      );
  refuse(
    at(s, 'auth.claimHeaders.{}'),
    RESERVED_HEADER,
    'is reserved (credentials, mesh identity, tracing or forwarding): pick another header name',
  );

  // Cors.
  addRule(at(s, `${ROUTE}.cors`), {
    if: { required: ['allowCredentials'], properties: { allowCredentials: { const: true } } },
    then: { properties: { allowOrigins: { not: { contains: { const: '*' } } } } },
    errorMessage: '"*" cannot go with allowCredentials: list the origins (browsers refuse the combination)',
  });

  // TokenSource, at both places.
  for (const path of ['auth.token', `${ROUTE}.auth.token`])
    addRule(at(s, path), exactlyOne(['header', 'cookie'], 'a token source needs exactly one of "header" or "cookie"'));

  // Issuer.
  const issuer = at(s, ISSUER);
  addRule(
    issuer,
    exactlyOne(['jwksUri', 'jwks', 'secret'], 'an issuer needs exactly one of "jwksUri", "jwks" or "secret"'),
  );
  addRule(issuer, {
    if: { required: ['secret'] },
    then: { properties: { algorithms: { items: { enum: HS } } } },
    else: { properties: { algorithms: { items: { not: { enum: HS } } } } },
    errorMessage:
      'an issuer with a shared "secret" accepts HS256/HS384/HS512 only; HS* algorithms need a shared "secret" (with public keys they would allow algorithm confusion)',
  });
  httpUrl(at(s, `${ISSUER}.jwksUri`));
  neverABackend(at(s, `${ISSUER}.jwksUri`));

  // RouteAuth.
  addRule(at(s, `${ROUTE}.auth`), {
    if: { required: ['mode'], properties: { mode: { enum: ['optional', 'off'] } } },
    then: { not: { anyOf: [{ required: ['scopes'] }, { required: ['claims'] }] } },
    errorMessage: '"scopes" and "claims" need mode: required',
  });

  // Route.
  const route = at(s, ROUTE);
  addRule(
    route,
    exactlyOne(
      ['service', 'backendRefs', 'redirect'],
      'a route needs exactly one of "service", "backendRefs" or "redirect"',
    ),
  );
  addRule(route, {
    dependencies: { version: ['service'] },
    errorMessage: '"version" goes with "service"; in "backendRefs" set it per entry',
  });
  // validate.ts: a pathPrefix rewrite replaces the matched prefix, so every path match must be one.
  addRule(route, {
    if: { required: ['rewrite'], properties: { rewrite: { required: ['pathPrefix'] } } },
    then: { properties: { matches: { items: { properties: { path: { required: ['prefix'] } } } } } },
    errorMessage: '"pathPrefix" rewrites need prefix path matches',
  });

  // Durations with bounds beyond "0 or more" (Duration.pipe(...) in schema.ts).
  durationRange(at(s, 'identity.tokenTtl'), { atLeast: '30', atMost: '3600' });
  durationRange(at(s, 'registry.heartbeatTtl'), { atLeast: '1' });
  durationRange(at(s, 'registry.probeInterval'), { atLeast: '1' });
  durationRange(at(s, 'registry.refreshInterval'), { atLeast: '0.1' });
  durationRange(at(s, 'observability.metrics.flushInterval'), { atLeast: '0.05', atMost: '10' });
  durationRange(at(s, 'observability.tracing.flushInterval'), { atLeast: '0.05', atMost: '10' });
}

/**
 * zod numbers are finite, and YAML can write .inf (JSON cannot): every number without an upper
 * bound gets the largest finite one. (YAML's .nan passes any JSON Schema bound: not encoded.)
 */
function finite(node: unknown): void {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) return node.forEach(finite);
  const n = node as Json;
  const types = Array.isArray(n.type) ? (n.type as unknown[]) : [n.type];
  if (
    (types.includes('number') || types.includes('integer')) &&
    n.maximum === undefined &&
    n.exclusiveMaximum === undefined &&
    n.const === undefined
  )
    n.maximum = Number.MAX_VALUE;
  for (const [key, value] of Object.entries(n))
    if (key !== 'default' && key !== 'enum' && key !== 'const') finite(value);
}

/** Descriptions for fields schema.ts does not describe; a field that has one keeps it. */
const DESCRIPTIONS: Record<string, string> = {
  services: 'The services of the mesh by name (a DNS label), each with the backends that serve it.',
  [`${SERVICE}.backends`]: 'Where the service runs: one entry per worker binding or URL, optionally per version.',
  [`${SERVICE}.traffic.loadBalancer`]: "How a version's endpoints share its requests.",
  routes: 'Gateway routes, tried in order of declaration (files by name); the first that matches takes the request.',
  [`${ROUTE}.matches.[].path`]: 'Exactly one of exact, prefix or pattern. Absent: every path.',
  [`${ROUTE}.matches.[].method`]: 'An HTTP method or a list of them; absent: any method.',
  [`${ROUTE}.matches.[].headers.{}.|1.regex`]: 'A JavaScript regular expression the header value must match.',
  [`${ROUTE}.matches.[].query.{}.|1.regex`]: 'A JavaScript regular expression the parameter value must match.',
  [`${ROUTE}.rewrite`]: 'Rewrites the request before it is forwarded: pathPrefix or path, and/or hostname.',
  [`${ROUTE}.redirect.scheme`]: "The redirect's scheme; absent: the request's. A new scheme drops the port.",
  [`${ROUTE}.redirect.hostname`]: "The redirect's host; absent: the request's.",
  [`${ROUTE}.redirect.port`]: "The redirect's port; absent: the request's (or the new scheme's default).",
  [`${ROUTE}.redirect.path`]: 'Replace the whole path, or the matched prefix (prefix matches only); absent: unchanged.',
  [`${ROUTE}.redirect.path.|0.replaceFullPath`]: 'The new path.',
  [`${ROUTE}.redirect.path.|1.replacePrefixMatch`]: 'Replaces the matched path prefix.',
  [`${ROUTE}.redirect.statusCode`]: '301, 302 (default), 303, 307 or 308.',
  [`${ROUTE}.fault.delay.percent`]: 'Share of requests delayed, 0 to 100.',
  [`${ROUTE}.fault.delay.fixedDelay`]: 'How long, e.g. 500ms.',
  [`${ROUTE}.fault.abort.percent`]: 'Share of requests aborted, 0 to 100.',
  [`${ROUTE}.fault.abort.status`]: 'The status they get, 400 to 599.',
  [`${ROUTE}.fallback.|0.status`]: 'Status of the fallback answer (default 200).',
  [`${ROUTE}.fallback.|0.body`]: 'Its body, at most 64 KiB (default empty).',
  [`${ROUTE}.fallback.|0.contentType`]: 'Its Content-Type (default text/plain; charset=utf-8).',
  [`${ISSUER}.jwks`]: 'The JWKS itself, inline { keys: [...] } or from an env var / secret { env: NAME }.',
  [`${ISSUER}.jwks.|0.keys`]: 'The JSON Web Keys.',
  [`${ISSUER}.secret.env`]: 'Env var or wrangler secret holding the shared secret.',
  'auth.verifiedCache': 'Verified tokens remembered per isolate, so a token is verified once, not on every request.',
  'identity.publicKeys.|0.keys': 'The JSON Web Keys.',
  'identity.signingKey.env': "Env var or wrangler secret holding this worker's private key.",
  rateLimits: 'Rate-limit policies by name; routes (rateLimits) and services (policy.rateLimits) refer to them.',
  [`${POLICY}.overrides.{}.limit`]: "Limit for this key value instead of the policy's.",
  [`${POLICY}.overrides.{}.burst`]: "Burst for this key value instead of the policy's.",
  'observability.tracing.headers.{}.env': 'Env var or wrangler secret holding the header value.',
};

function addDescriptions(s: Json): void {
  for (const [path, description] of Object.entries(DESCRIPTIONS)) {
    const node = at(s, path);
    node.description ??= description;
  }
  for (const modifier of HEADER_MODIFIERS)
    for (const op of ['set', 'add']) {
      at(s, `${modifier}.${op}.[].name`).description ??=
        'Header name (case-insensitive); not x-mesh-* nor a reserved header.';
      at(s, `${modifier}.${op}.[].value`).description ??= 'Header value.';
    }
}

// ---------------------------------------------------------------------------------------------
// Duration ranges. A duration is seconds as a number, or a decimal with a unit ("0.5m"); a range
// on the number is minimum/maximum, and on the string a pattern per unit that accepts exactly the
// decimals whose value, times the unit, lies in the range (exact rational arithmetic: a bound such
// as 30s in days, 0.000347222..., repeats forever, yet the decimals above it form a regular set).

/** A non-negative rational number. */
interface Rational {
  n: bigint;
  d: bigint;
}

const UNITS: ReadonlyArray<[string, Rational]> = [
  ['ms', { n: 1n, d: 1000n }],
  ['s', { n: 1n, d: 1n }],
  ['m', { n: 60n, d: 1n }],
  ['h', { n: 3600n, d: 1n }],
  ['d', { n: 86400n, d: 1n }],
];

function rational(decimal: string): Rational {
  const [int, frac = ''] = decimal.split('.');
  return { n: BigInt(`${int}${frac}`), d: 10n ** BigInt(frac.length) };
}

interface Bounds {
  /** Inclusive lower bound in seconds, as a decimal. */
  atLeast?: string;
  /** Exclusive lower bound. */
  above?: string;
  /** Inclusive upper bound. */
  atMost?: string;
}

function durationRange(node: Json, bounds: Bounds): void {
  const [number, text] = (node.anyOf ?? []) as Json[];
  if (number?.type !== 'number' || text?.type !== 'string')
    throw new Error('json-schema.ts: a duration is no longer { anyOf: [number, string] }');
  if (bounds.atLeast !== undefined) number.minimum = Number(bounds.atLeast);
  if (bounds.above !== undefined) {
    delete number.minimum;
    number.exclusiveMinimum = Number(bounds.above);
  }
  if (bounds.atMost !== undefined) number.maximum = Number(bounds.atMost);
  const branches = UNITS.map(([unit, factor]) => {
    // value x unit in range <=> value in range / unit.
    const per = (b: string): Rational => {
      const q = rational(b);
      return { n: q.n * factor.d, d: q.d * factor.n };
    };
    const low =
      bounds.atLeast !== undefined
        ? decimalsFrom(per(bounds.atLeast), false)
        : bounds.above !== undefined
          ? decimalsFrom(per(bounds.above), true)
          : undefined;
    const high = bounds.atMost !== undefined ? decimalsUpTo(per(bounds.atMost)) : undefined;
    if (low !== undefined && high !== undefined) return `(?=(?:${low})${unit}$)(?:${high})${unit}`;
    return `(?:${low ?? high ?? '\\d+(?:\\.\\d+)?'})${unit}`;
  });
  addRule(text, { pattern: `^(?:${branches.join('|')})$` });
}

/** The decimal expansion of q: integer digits, then the fraction's non-repeating and repeating digits. */
function expand(q: Rational): { int: string; pre: string; rep: string } {
  const int = (q.n / q.d).toString();
  let r = q.n % q.d;
  const digits: string[] = [];
  const seen = new Map<bigint, number>();
  while (r !== 0n && !seen.has(r)) {
    seen.set(r, digits.length);
    r *= 10n;
    digits.push((r / q.d).toString());
    r %= q.d;
  }
  if (r === 0n) return { int, pre: digits.join(''), rep: '' };
  const start = seen.get(r)!;
  return { int, pre: digits.slice(0, start).join(''), rep: digits.slice(start).join('') };
}

/** A digit above / below `c` (below: not under `min`), as a character class; undefined if none. */
function digitAbove(c: string): string | undefined {
  const v = Number(c);
  return v === 9 ? undefined : v === 8 ? '9' : `[${v + 1}-9]`;
}
function digitBelow(c: string, min = 0): string | undefined {
  const v = Number(c);
  return v <= min ? undefined : v - 1 === min ? `${min}` : `[${min}-${v - 1}]`;
}

const rest = (count: number) => (count === 0 ? '' : count === 1 ? '\\d' : `\\d{${count}}`);

/** Integers (digits without leading zeros, "" for 0) above `int`. */
function integersAbove(int: string): string[] {
  if (int === '0') return ['[1-9]\\d*'];
  const out = [`[1-9]\\d{${int.length},}`];
  for (let i = 0; i < int.length; i++) {
    const c = digitAbove(int[i]!);
    if (c) out.push(`${int.slice(0, i)}${c}${rest(int.length - 1 - i)}`);
  }
  return out;
}

/** Integers (as above) below `int`. */
function integersBelow(int: string): string[] {
  if (int === '0') return [];
  const out = [''];
  if (int.length >= 2) out.push(`[1-9]\\d{0,${int.length - 2}}`);
  for (let i = 0; i < int.length; i++) {
    const c = digitBelow(int[i]!, i === 0 ? 1 : 0);
    if (c) out.push(`${int.slice(0, i)}${c}${rest(int.length - 1 - i)}`);
  }
  return out;
}

/** Fraction digit strings ("" for none) at least (or, strict, above) 0.<pre><rep><rep>... */
function fractionsFrom(pre: string, rep: string, strict: boolean): string[] {
  const out: string[] = [];
  for (let k = 0; k < pre.length; k++) {
    const c = digitAbove(pre[k]!);
    if (c) out.push(`${pre.slice(0, k)}${c}\\d*`);
  }
  if (rep) {
    for (let j = 0; j < rep.length; j++) {
      const c = digitAbove(rep[j]!);
      if (c) out.push(`${pre}(?:${rep})*${rep.slice(0, j)}${c}\\d*`);
    }
  } else out.push(strict ? `${pre}0*[1-9]\\d*` : `${pre}\\d*`);
  return out;
}

/** Fraction digit strings at most 0.<pre><rep><rep>... */
function fractionsUpTo(pre: string, rep: string): string[] {
  if (!pre && !rep) return ['0*'];
  const out: string[] = [];
  for (let k = 0; k < pre.length; k++) {
    out.push(pre.slice(0, k));
    const c = digitBelow(pre[k]!);
    if (c) out.push(`${pre.slice(0, k)}${c}\\d*`);
  }
  if (rep) {
    for (let j = 0; j < rep.length; j++) {
      const head = `${pre}(?:${rep})*${rep.slice(0, j)}`;
      out.push(head);
      const c = digitBelow(rep[j]!);
      if (c) out.push(`${head}${c}\\d*`);
    }
  } else out.push(`${pre}0*`);
  return out;
}

/** "." and a fraction from `fractions`, or none if "" is one of them. */
function fractionPart(fractions: string[], emptyAllowed: boolean): string {
  const body = `\\.(?:${fractions.join('|')})`;
  return emptyAllowed ? `(?:${body})?` : body;
}

/** Decimals (\d+(\.\d+)?) whose value is at least q (above q, if strict). */
function decimalsFrom(q: Rational, strict: boolean): string {
  const { int, pre, rep } = expand(q);
  const zero = !pre && !rep;
  const same = `${int === '0' ? '' : int}${fractionPart(fractionsFrom(pre, rep, strict), zero && !strict)}`;
  return `0*(?:(?:${integersAbove(int).join('|')})(?:\\.\\d+)?|${same})`;
}

/** Decimals whose value is at most q. */
function decimalsUpTo(q: Rational): string {
  const { int, pre, rep } = expand(q);
  const same = `${int === '0' ? '' : int}${fractionPart(fractionsUpTo(pre, rep), true)}`;
  const below = integersBelow(int);
  return below.length ? `0*(?:(?:${below.join('|')})(?:\\.\\d+)?|${same})` : `0*${same}`;
}
