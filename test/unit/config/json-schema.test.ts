/**
 * The JSON Schema editors check routes files with (schema/routes.schema.json) refuses what
 * `meshwork validate` refuses, wherever JSON Schema can say it: for each rule a document a user
 * could write, refused by both, beside the same document corrected, accepted by both. The schema
 * is compiled by a real draft-07 validator (ajv), as an editor would.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { routesJsonSchema } from '../../../src/config/json-schema.ts';
import { validateSources } from '../../../src/config/validate.ts';

const schema = JSON.parse(readFileSync('schema/routes.schema.json', 'utf8')) as Record<string, unknown>;
const ajv = new Ajv({ allErrors: true });
const schemaValidate = ajv.compile(schema);

function bySchema(text: string): { ok: boolean; errors: string } {
  const ok = schemaValidate(parse(text) ?? {}) as boolean;
  return { ok, errors: ajv.errorsText(schemaValidate.errors) };
}

function byMeshwork(text: string) {
  return validateSources([{ name: 'routes/mesh.yaml', text }]);
}

function expectAccepted(text: string): void {
  const v = byMeshwork(text);
  expect(v.ok, `meshwork validate refused:\n${text}\n${v.ok ? '' : v.errors.map((e) => e.message).join('\n')}`).toBe(
    true,
  );
  const s = bySchema(text);
  expect(s.ok, `the schema refused:\n${text}\n${s.errors}`).toBe(true);
}

const SERVICE = `
services:
  svc:
    backends:
      - binding: SVC
`;
/** A complete file with one route to svc, plus `route` lines (indented 4) and `more` top-level text. */
const withRoute = (route: string, more = '') => `${SERVICE}${more}
routes:
  - name: r
    matches: [{ path: { prefix: /api } }]
    service: svc
${route}`;
const ISSUERS = `
auth:
  issuers:
    sso:
      issuer: https://login.example.com/
      audiences: [api]
      algorithms: [RS256]
      jwksUri: https://login.example.com/.well-known/jwks.json
`;
/** A file with one backend: the lines of its list entry. */
const backend = (lines: string) => `
services:
  svc:
    backends:
      - ${lines}
`;
const issuer = (lines: string) => `
auth:
  issuers:
    sso:
      issuer: https://login.example.com/
      audiences: [api]
${lines}`;
const limit = (fields: string) => `
rateLimits:
  p: { limit: 10, period: 1s, ${fields} }
`;

interface Case {
  rule: string;
  /** The document as it should be written: both accept it. */
  good: string;
  /** The same with the mistake: both refuse it. */
  bad: string;
  /** Where `meshwork validate` reports it, and (part of) what it says. */
  field: string;
  message?: string;
}

const CASES: Case[] = [
  // Exactly one of.
  {
    rule: 'a backend with both binding and url',
    good: backend('binding: SVC'),
    bad: backend('{ binding: SVC, url: "https://svc.example.com" }'),
    field: 'services.svc.backends[0]',
    message: 'exactly one of "binding" or "url"',
  },
  {
    rule: 'a backend with neither binding nor url',
    good: backend('{ binding: SVC, version: v1 }'),
    bad: backend('{ version: v1 }'),
    field: 'services.svc.backends[0]',
    message: 'exactly one of "binding" or "url"',
  },
  {
    rule: 'a route with both service and backendRefs',
    good: withRoute(''),
    bad: withRoute('    backendRefs: [{ service: svc }]\n'),
    field: 'routes[0]',
    message: 'exactly one of "service", "backendRefs" or "redirect"',
  },
  {
    rule: 'a route with a service and a redirect',
    good: withRoute(''),
    bad: withRoute('    redirect: { hostname: www.example.com }\n'),
    field: 'routes[0]',
    message: 'exactly one of "service", "backendRefs" or "redirect"',
  },
  {
    rule: 'a route with no target',
    good: `${SERVICE}\nroutes:\n  - name: r\n    service: svc\n`,
    bad: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ path: { prefix: /api } }]\n`,
    field: 'routes[0]',
    message: 'exactly one of "service", "backendRefs" or "redirect"',
  },
  {
    rule: 'a path match with both exact and prefix',
    good: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ path: { exact: /api } }]\n    service: svc\n`,
    bad: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ path: { exact: /api, prefix: /api } }]\n    service: svc\n`,
    field: 'routes[0].matches[0].path',
    message: 'exactly one of "exact", "prefix" or "pattern"',
  },
  {
    rule: 'an empty path match',
    good: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ method: GET }]\n    service: svc\n`,
    bad: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ path: {}, method: GET }]\n    service: svc\n`,
    field: 'routes[0].matches[0].path',
    message: 'exactly one of "exact", "prefix" or "pattern"',
  },
  {
    rule: 'a token source with both header and cookie (auth.token)',
    good: `${ISSUERS}  token: { cookie: session }\n`,
    bad: `${ISSUERS}  token: { header: x-token, cookie: session }\n`,
    field: 'auth.token',
    message: 'exactly one of "header" or "cookie"',
  },
  {
    rule: "an empty token source (a route's auth.token)",
    good: withRoute('    auth: { token: { header: x-token } }\n', ISSUERS),
    bad: withRoute('    auth: { token: {} }\n', ISSUERS),
    field: 'routes[0].auth.token',
    message: 'exactly one of "header" or "cookie"',
  },
  {
    rule: 'an issuer with both jwksUri and a secret',
    good: issuer('      algorithms: [HS256]\n      secret: { env: JWT_SECRET }\n'),
    bad: issuer(
      '      algorithms: [HS256]\n      secret: { env: JWT_SECRET }\n      jwksUri: https://login.example.com/jwks\n',
    ),
    field: 'auth.issuers.sso',
    message: 'exactly one of "jwksUri", "jwks" or "secret"',
  },
  {
    rule: 'an issuer without keys',
    good: issuer('      algorithms: [ES256]\n      jwks: { env: SSO_JWKS }\n'),
    bad: issuer('      algorithms: [ES256]\n'),
    field: 'auth.issuers.sso',
    message: 'exactly one of "jwksUri", "jwks" or "secret"',
  },
  // URLs.
  {
    rule: 'a backend URL with another scheme',
    good: backend('url: https://files.example.com'),
    bad: backend('url: ftp://files.example.com'),
    field: 'services.svc.backends[0].url',
    message: 'must be an absolute http:// or https:// URL',
  },
  {
    rule: 'a backend URL with one slash',
    good: backend('url: https://svc.example.com/api'),
    bad: backend('url: https:/svc.example.com/api'),
    field: 'services.svc.backends[0].url',
    message: 'must be an absolute http:// or https:// URL',
  },
  {
    rule: 'a backend URL with a query',
    good: backend('url: https://svc.example.com/api'),
    bad: backend('url: https://svc.example.com/api?key=abc'),
    field: 'services.svc.backends[0].url',
    message: 'must not contain a query or fragment',
  },
  {
    rule: 'a backend URL with a fragment',
    good: backend('url: https://svc.example.com/api'),
    bad: backend('url: "https://svc.example.com/api#v2"'),
    field: 'services.svc.backends[0].url',
    message: 'must not contain a query or fragment',
  },
  {
    rule: 'a backend URL with credentials',
    good: backend('url: https://svc.example.com'),
    bad: backend('url: https://deploy:s3cret@svc.example.com'),
    field: 'services.svc.backends[0].url',
    message: 'must not contain credentials',
  },
  {
    rule: 'a backend at the cloud metadata address',
    good: backend('url: http://169.255.169.254/latest'),
    bad: backend('url: http://169.254.169.254/latest'),
    field: 'services.svc.backends[0].url',
    message: 'cloud metadata service',
  },
  {
    rule: "a backend at GCP's metadata name",
    good: backend('url: http://metadata.example.com/'),
    bad: backend('url: http://Metadata.Google.Internal/computeMetadata/v1'),
    field: 'services.svc.backends[0].url',
    message: 'cloud metadata service',
  },
  {
    rule: 'a backend at a link-local IPv6 address',
    good: backend('url: "http://[2001:db8::1]:8080/"'),
    bad: backend('url: "http://[fe80::1]:8080/"'),
    field: 'services.svc.backends[0].url',
    message: 'link-local',
  },
  {
    rule: 'a backend at a multicast address',
    good: backend('url: http://203.0.113.7/'),
    bad: backend('url: http://224.0.0.251/'),
    field: 'services.svc.backends[0].url',
    message: 'not a unicast address',
  },
  {
    rule: 'a URL backend whose host cannot name an endpoint, without a name',
    good: backend('{ url: "https://svc.example.com./api", name: svc }'),
    bad: backend('{ url: "https://svc.example.com./api" }'),
    field: 'services.svc.backends[0].url',
    message: 'cannot name an endpoint: give the backend a "name"',
  },
  {
    rule: 'a tracing collector with a query',
    good: 'observability:\n  tracing:\n    collector: https://otel.example.com/v1/traces\n',
    bad: 'observability:\n  tracing:\n    collector: https://otel.example.com/v1/traces?token=abc\n',
    field: 'observability.tracing.collector',
    message: 'must not contain a query or fragment',
  },
  {
    rule: 'a tracing collector with another scheme',
    good: 'observability:\n  tracing:\n    collector: http://localhost:4318\n',
    bad: 'observability:\n  tracing:\n    collector: grpc://localhost:4317\n',
    field: 'observability.tracing.collector',
  },
  {
    rule: 'a jwksUri with another scheme',
    good: issuer('      algorithms: [RS256]\n      jwksUri: https://login.example.com/jwks\n'),
    bad: issuer('      algorithms: [RS256]\n      jwksUri: file:///etc/jwks.json\n'),
    field: 'auth.issuers.sso.jwksUri',
  },
  {
    rule: 'a jwksUri at the metadata service',
    good: issuer('      algorithms: [RS256]\n      jwksUri: http://10.0.0.5/jwks\n'),
    bad: issuer('      algorithms: [RS256]\n      jwksUri: http://169.254.169.254/jwks\n'),
    field: 'auth.issuers.sso.jwksUri',
    message: 'cloud metadata service',
  },
  // Fields that exclude each other or go together.
  {
    rule: 'allowAnonymous with allowCallers',
    good: `${SERVICE}    policy: { allowCallers: [gateway], allowAnonymous: false }\n`,
    bad: `${SERVICE}    policy: { allowCallers: [gateway], allowAnonymous: true }\n`,
    field: 'services.svc.policy.allowAnonymous',
    message: 'allowAnonymous cannot go with allowCallers',
  },
  {
    rule: 'a route version with backendRefs',
    good: `${SERVICE}\nroutes:\n  - name: r\n    backendRefs: [{ service: svc }]\n`,
    bad: `${SERVICE}\nroutes:\n  - name: r\n    backendRefs: [{ service: svc }]\n    version: v1\n`,
    field: 'routes[0].version',
    message: '"version" goes with "service"',
  },
  {
    rule: 'ConsistentHash without hashOn',
    good: `${SERVICE}    traffic: { loadBalancer: { policy: ConsistentHash, hashOn: "header:x-user" } }\n`,
    bad: `${SERVICE}    traffic: { loadBalancer: { policy: ConsistentHash } }\n`,
    field: 'services.svc.traffic.loadBalancer.hashOn',
    message: 'hashOn goes with policy ConsistentHash',
  },
  {
    rule: 'hashOn without ConsistentHash (the default RoundRobin)',
    good: `${SERVICE}    traffic: { loadBalancer: { policy: LeastRequest } }\n`,
    bad: `${SERVICE}    traffic: { loadBalancer: { hashOn: "cookie:session" } }\n`,
    field: 'services.svc.traffic.loadBalancer.hashOn',
    message: 'hashOn goes with policy ConsistentHash',
  },
  {
    rule: 'lease settings without mode: lease',
    good: limit('mode: lease, lease: { size: 2 }'),
    bad: limit('lease: { size: 2 }'),
    field: 'rateLimits.p.lease',
    message: '"lease" settings need mode: lease',
  },
  {
    rule: 'scopes on a route whose auth is optional',
    good: withRoute('    auth: { mode: required, scopes: [read] }\n', ISSUERS),
    bad: withRoute('    auth: { mode: optional, scopes: [read] }\n', ISSUERS),
    field: 'routes[0].auth.mode',
    message: '"scopes" and "claims" need mode: required',
  },
  {
    rule: 'claims on a route whose auth is off',
    good: withRoute('    auth: { mode: off }\n', ISSUERS),
    bad: withRoute('    auth: { mode: off, claims: { tenant: acme } }\n', ISSUERS),
    field: 'routes[0].auth.mode',
    message: '"scopes" and "claims" need mode: required',
  },
  {
    rule: 'CORS "*" with credentials',
    good: withRoute('    cors: { allowOrigins: ["https://app.example.com"], allowCredentials: true }\n'),
    bad: withRoute('    cors: { allowOrigins: ["*"], allowCredentials: true }\n'),
    field: 'routes[0].cors.allowOrigins',
    message: '"*" cannot go with allowCredentials',
  },
  {
    rule: 'an RS256 issuer with a shared secret',
    good: issuer('      algorithms: [HS256]\n      secret: { env: JWT_SECRET }\n'),
    bad: issuer('      algorithms: [RS256, HS256]\n      secret: { env: JWT_SECRET }\n'),
    field: 'auth.issuers.sso.algorithms',
    message: 'accepts HS256/HS384/HS512 only',
  },
  {
    rule: 'HS256 with public keys',
    good: issuer('      algorithms: [RS256]\n      jwksUri: https://login.example.com/jwks\n'),
    bad: issuer('      algorithms: [RS256, HS256]\n      jwksUri: https://login.example.com/jwks\n'),
    field: 'auth.issuers.sso.algorithms',
    message: 'HS* algorithms need a shared "secret"',
  },
  {
    rule: 'a rewrite with both pathPrefix and path',
    good: withRoute('    rewrite: { pathPrefix: /v2 }\n'),
    bad: withRoute('    rewrite: { pathPrefix: /v2, path: /v2/index }\n'),
    field: 'routes[0].rewrite',
    message: 'at most one of "pathPrefix" or "path"',
  },
  {
    rule: 'an empty rewrite',
    good: withRoute('    rewrite: { hostname: api.internal }\n'),
    bad: withRoute('    rewrite: {}\n'),
    field: 'routes[0].rewrite',
    message: 'a rewrite needs "pathPrefix", "path" or "hostname"',
  },
  {
    rule: 'a pathPrefix rewrite on an exact match',
    good: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ path: { prefix: /old } }, { method: POST }]\n    service: svc\n    rewrite: { pathPrefix: /new }\n`,
    bad: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ path: { prefix: /old } }, { path: { exact: /legacy } }]\n    service: svc\n    rewrite: { pathPrefix: /new }\n`,
    field: 'routes[0].rewrite.pathPrefix',
    message: '"pathPrefix" rewrites need prefix path matches',
  },
  // Names, paths and headers.
  {
    rule: 'a service named gateway',
    good: 'services:\n  edge:\n    backends: [{ binding: EDGE }]\n',
    bad: 'services:\n  gateway:\n    backends: [{ binding: EDGE }]\n',
    field: 'services.gateway',
    message: '"gateway" is reserved',
  },
  {
    rule: 'mirroring to "gateway"',
    good: withRoute('    mirror: { service: svc, percent: 10 }\n'),
    bad: withRoute('    mirror: { service: gateway, percent: 10 }\n'),
    field: 'routes[0].mirror.service',
    message: '"gateway" is reserved',
  },
  {
    rule: 'a path match with a query',
    good: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ path: { exact: /search }, query: { q: books } }]\n    service: svc\n`,
    bad: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ path: { exact: /search?q=books } }]\n    service: svc\n`,
    field: 'routes[0].matches[0].path.exact',
    message: 'must not contain "?", "#" or whitespace',
  },
  {
    rule: 'a redirect path with a space',
    good: `${SERVICE}\nroutes:\n  - name: r\n    redirect: { path: { replaceFullPath: /new-docs } }\n`,
    bad: `${SERVICE}\nroutes:\n  - name: r\n    redirect: { path: { replaceFullPath: /new docs } }\n`,
    field: 'routes[0].redirect.path.replaceFullPath',
    message: 'must not contain "?", "#" or whitespace',
  },
  {
    rule: "a route under meshwork's own /_mesh/",
    good: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ path: { prefix: /_meshy } }]\n    service: svc\n`,
    bad: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ path: { prefix: /_mesh/health } }]\n    service: svc\n`,
    field: 'routes[0].matches[0].path.prefix',
    message: 'reserved',
  },
  {
    rule: 'a header match regex that does not compile',
    good: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ headers: { x-tenant: { regex: "^(acme|globex)$" } } }]\n    service: svc\n`,
    bad: `${SERVICE}\nroutes:\n  - name: r\n    matches: [{ headers: { x-tenant: { regex: "^(acme|globex$" } } }]\n    service: svc\n`,
    field: 'routes[0].matches[0].headers.x-tenant.regex',
    message: 'invalid regular expression',
  },
  {
    rule: 'a header filter setting Authorization',
    good: withRoute('    requestHeaders: { set: [{ name: X-Env, value: prod }] }\n'),
    bad: withRoute('    requestHeaders: { set: [{ name: Authorization, value: "Bearer abc" }] }\n'),
    field: 'routes[0].requestHeaders.set[0].name',
    message: 'a filter may not change it',
  },
  {
    rule: "a backendRef's filter removing an x-mesh- header",
    good: `${SERVICE}\nroutes:\n  - name: r\n    backendRefs: [{ service: svc, requestHeaders: { remove: [X-Debug] } }]\n`,
    bad: `${SERVICE}\nroutes:\n  - name: r\n    backendRefs: [{ service: svc, requestHeaders: { remove: [X-Mesh-User] } }]\n`,
    field: 'routes[0].backendRefs[0].requestHeaders.remove[0]',
    message: 'a filter may not change it',
  },
  {
    rule: 'a claim sent as the Cookie header',
    good: 'auth:\n  claimHeaders: { tenant: x-tenant }\n',
    bad: 'auth:\n  claimHeaders: { tenant: Cookie }\n',
    field: 'auth.claimHeaders.tenant',
    message: 'is reserved',
  },
  // Ranges of durations written with units.
  {
    rule: 'a rate limit period of 0s',
    good: limit('key: [ip]'),
    bad: 'rateLimits:\n  p: { limit: 10, period: 0s }\n',
    field: 'rateLimits.p.period',
    message: 'must be longer than 0',
  },
  {
    rule: 'identity tokens living 10s',
    good: 'identity:\n  tokenTtl: 0.5m\n',
    bad: 'identity:\n  tokenTtl: 10s\n',
    field: 'identity.tokenTtl',
    message: 'at least 30s',
  },
  {
    rule: 'identity tokens living 2h',
    good: 'identity:\n  tokenTtl: 1h\n',
    bad: 'identity:\n  tokenTtl: 2h\n',
    field: 'identity.tokenTtl',
    message: 'at most 1h',
  },
  {
    rule: 'a heartbeat TTL under a second',
    good: 'registry:\n  heartbeatTtl: 1000ms\n',
    bad: 'registry:\n  heartbeatTtl: 500ms\n',
    field: 'registry.heartbeatTtl',
    message: 'at least 1s',
  },
  {
    rule: 'a refresh interval under 100ms',
    good: 'registry:\n  refreshInterval: 0.1s\n',
    bad: 'registry:\n  refreshInterval: 50ms\n',
    field: 'registry.refreshInterval',
    message: 'at least 100ms',
  },
  {
    rule: 'a metrics flush interval of a minute',
    good: 'observability:\n  metrics: { flushInterval: 10s }\n',
    bad: 'observability:\n  metrics: { flushInterval: 1m }\n',
    field: 'observability.metrics.flushInterval',
    message: 'at most 10s',
  },
  {
    rule: 'a span flush interval of 10ms',
    good: 'observability:\n  tracing: { flushInterval: 50ms }\n',
    bad: 'observability:\n  tracing: { flushInterval: 10ms }\n',
    field: 'observability.tracing.flushInterval',
    message: 'at least 50ms',
  },
  // A gcra policy's burst of 1.
  {
    rule: 'gcra without a burst, costing 5',
    good: limit('algorithm: gcra, burst: 5, cost: 5'),
    bad: limit('algorithm: gcra, cost: 5'),
    field: 'rateLimits.p.cost',
    message: 'exceeds the burst (1)',
  },
  {
    rule: 'gcra without a burst, an override scaling it to 0',
    good: limit('algorithm: gcra, overrides: { free: { multiplier: 0.5 } }'),
    bad: limit('algorithm: gcra, overrides: { free: { multiplier: 0.2 } }'),
    field: 'rateLimits.p.overrides.free',
    message: 'leaves a burst of 0',
  },
];

/** Rules that hold at several places: one case per place. */
const ROUTE_TO = (target: string) => `${SERVICE}\nroutes:\n  - name: r\n${target}`;
for (const [where, field, good, bad] of [
  ['service', 'routes[0].service', '    service: svc\n', '    service: gateway\n'],
  [
    'backendRefs',
    'routes[0].backendRefs[0].service',
    '    backendRefs: [{ service: svc }]\n',
    '    backendRefs: [{ service: gateway }]\n',
  ],
  [
    'fallback',
    'routes[0].fallback',
    '    service: svc\n    fallback: { service: svc }\n',
    '    service: svc\n    fallback: { service: gateway }\n',
  ],
] as const)
  CASES.push({ rule: `a route's ${where} naming "gateway"`, good: ROUTE_TO(good), bad: ROUTE_TO(bad), field });

for (const [kind, good, bad] of [
  ['exact', '/_mesh2', '/_mesh'],
  ['pattern', '/mesh/:x', '/_mesh/:x'],
] as const)
  CASES.push({
    rule: `an ${kind} match under /_mesh/`,
    good: ROUTE_TO(`    matches: [{ path: { ${kind}: ${good} } }]\n    service: svc\n`),
    bad: ROUTE_TO(`    matches: [{ path: { ${kind}: ${bad} } }]\n    service: svc\n`),
    field: `routes[0].matches[0].path.${kind}`,
    message: 'reserved',
  });

for (const [at, field, wrap] of [
  ['the route', 'routes[0]', (m: string) => `    service: svc\n${m}`],
  ['a backendRef', 'routes[0].backendRefs[0]', (m: string) => `    backendRefs:\n      - service: svc\n    ${m}`],
] as const)
  for (const side of ['requestHeaders', 'responseHeaders'])
    for (const [op, good, bad, index] of [
      ['set', '[{ name: X-Env, value: a }]', '[{ name: X-Mesh-Route, value: a }]', '[0].name'],
      ['add', '[{ name: X-Via, value: a }]', '[{ name: Set-Cookie, value: "a=1" }]', '[0].name'],
      ['remove', '[X-Debug]', '[Content-Length]', '[0]'],
    ] as const)
      CASES.push({
        rule: `${at}'s ${side}.${op} changing a reserved header`,
        good: ROUTE_TO(wrap(`    ${side}: { ${op}: ${good} }\n`)),
        bad: ROUTE_TO(wrap(`    ${side}: { ${op}: ${bad} }\n`)),
        field: `${field}.${side}.${op}${index}`,
        message: 'a filter may not change it',
      });

CASES.push(
  {
    rule: 'a named backend URL with another scheme',
    good: backend('{ url: "https://files.example.com", name: files }'),
    bad: backend('{ url: "ftp://files.example.com", name: files }'),
    field: 'services.svc.backends[0].url',
    message: 'must be an absolute http:// or https:// URL',
  },
  {
    rule: 'a tracing collector with credentials',
    good: 'observability:\n  tracing:\n    collector: https://otel.example.com\n',
    bad: 'observability:\n  tracing:\n    collector: https://apikey:abc@otel.example.com\n',
    field: 'observability.tracing.collector',
    message: 'must not contain credentials',
  },
  {
    rule: 'identity tokens living 7200 (seconds)',
    good: 'identity:\n  tokenTtl: 3600\n',
    bad: 'identity:\n  tokenTtl: 7200\n',
    field: 'identity.tokenTtl',
    message: 'at most 1h',
  },
  {
    rule: 'a rate limit period of 0 (seconds)',
    good: 'rateLimits:\n  p: { limit: 10, period: 0.5 }\n',
    bad: 'rateLimits:\n  p: { limit: 10, period: 0 }\n',
    field: 'rateLimits.p.period',
    message: 'must be longer than 0',
  },
  {
    rule: 'a refresh interval of 0.05 (seconds)',
    good: 'registry:\n  refreshInterval: 0.1\n',
    bad: 'registry:\n  refreshInterval: 0.05\n',
    field: 'registry.refreshInterval',
    message: 'at least 100ms',
  },
  {
    rule: 'an infinite timeout',
    good: `${SERVICE}    traffic: { timeouts: { request: 0s } }\n`,
    bad: `${SERVICE}    traffic: { timeouts: { request: .inf } }\n`,
    field: 'services.svc.traffic.timeouts.request',
  },
  {
    rule: 'unlimited retries per second',
    good: `${SERVICE}    traffic: { retryBudget: { minPerSecond: 1000 } }\n`,
    bad: `${SERVICE}    traffic: { retryBudget: { minPerSecond: .inf } }\n`,
    field: 'services.svc.traffic.retryBudget.minPerSecond',
  },
  {
    rule: 'probing every 100ms',
    good: 'registry:\n  probeInterval: 1.5s\n',
    bad: 'registry:\n  probeInterval: 100ms\n',
    field: 'registry.probeInterval',
    message: 'at least 1s',
  },
);

describe('JSON Schema for editors', () => {
  it('schema/routes.schema.json is up to date with the zod schema (npm run build:schema)', () => {
    expect(JSON.parse(readFileSync('schema/routes.schema.json', 'utf8'))).toEqual(routesJsonSchema());
  });

  it('the routes files point yaml-language-server at it', () => {
    expect(readFileSync('routes/mesh.yaml', 'utf8')).toMatch(
      /^# yaml-language-server: \$schema=\.\.\/schema\/routes\.schema\.json/,
    );
  });

  it('is a valid draft-07 schema, with every pattern valid with and without the "u" flag', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(ajv.validateSchema(schema)).toBe(true);
    const patterns: string[] = [];
    JSON.stringify(schema, (key, value: unknown) => {
      if (key === 'pattern' && typeof value === 'string') patterns.push(value);
      return value;
    });
    expect(patterns.length).toBeGreaterThan(50);
    for (const p of patterns) {
      expect(() => new RegExp(p)).not.toThrow();
      expect(() => new RegExp(p, 'u')).not.toThrow(); // as yaml-language-server compiles them
    }
  });

  it.each(readdirSync('routes').filter((f) => /\.ya?ml$/.test(f)))('routes/%s passes both', (file) => {
    expectAccepted(readFileSync(join('routes', file), 'utf8'));
  });

  it('a file that uses most of the schema passes both', () => {
    expectAccepted(`
auth:
  issuers:
    corp:
      issuer: https://login.example.com/
      audiences: [api.example.com]
      algorithms: [RS256, ES256]
      jwksUri: https://login.example.com/.well-known/jwks.json
      cache: { minTtl: 1m, maxTtl: 24h }
    legacy:
      issuer: legacy-app
      audiences: [api]
      algorithms: [HS256]
      secret: { env: LEGACY_JWT_SECRET }
  token: { header: authorization }
  claimHeaders: { sub: x-mesh-sub, tenant: x-tenant }
identity: { tokenTtl: 5m }
registry: { heartbeatTtl: 90s, probeInterval: 15s, refreshInterval: 0.5s }
rateLimits:
  per-user: { limit: 10, period: 1s, burst: 20, key: [claim:sub ?? ip], mode: lease, lease: { ttl: 500ms } }
  api-keys: { algorithm: gcra, limit: 10, period: 1s, key: ["header:x-api-key"], onStoreFailure: closed }
  from-a: { limit: 20, period: 1s, key: [caller, claim:sub], callers: [service-a] }
services:
  service-a:
    backends: [{ binding: SERVICE_A }]
  service-b:
    backends:
      - { binding: SERVICE_B_V1, version: v1, weight: 90 }
      - { url: "https://b.example.com:8443/api", version: v2, weight: 10 }
      - { url: "http://[2001:db8::1]:8080", version: v2, name: ipv6 }
    policy: { allowCallers: [gateway, service-a], rateLimits: [from-a] }
    traffic:
      loadBalancer: { policy: ConsistentHash, hashOn: "header:x-user" }
      timeouts: { request: 10s, backendRequest: 2s }
      retry: { attempts: 2, backoff: 25ms }
      outlierDetection: {}
  public:
    backends: [{ binding: PUBLIC }]
    policy: { allowAnonymous: true }
routes:
  - name: a
    hostnames: [api.example.com, "*.example.com"]
    matches:
      - path: { prefix: /a }
        method: [GET, POST]
        headers: { x-canary: { regex: "^(1|true)$" } }
    service: service-a
    rewrite: { pathPrefix: /internal/a, hostname: a.internal }
    requestHeaders: { set: [{ name: X-Env, value: prod }], remove: [X-Debug] }
    auth: { scopes: [read:a], claims: { tenant: [acme, globex] }, token: { cookie: session } }
    rateLimits: [per-user]
    cors: { allowOrigins: ["https://app.example.com"], allowCredentials: true, maxAge: 10m }
    fallback: { status: 200, body: '{"items":[]}', contentType: application/json }
  - name: b
    matches: [{ path: { pattern: "/b/:id" } }]
    backendRefs:
      - { service: service-b, version: v1, weight: 95 }
      - { service: service-b, version: v2, weight: 5, responseHeaders: { add: [{ name: X-Canary, value: "1" }] } }
    sticky: claim:sub
    auth: { mode: optional }
    mirror: { service: public, percent: 10 }
    fault: { delay: { percent: 1, fixedDelay: 500ms } }
  - name: old
    matches: [{ path: { exact: /old } }]
    redirect: { scheme: https, hostname: docs.example.com, path: { replaceFullPath: /docs }, statusCode: 301 }
observability:
  metrics: { flushInterval: 2s }
  tracing: { collector: "https://otel.example.com", flushInterval: 0.25s, headers: { x-api-key: { env: OTLP_KEY } } }
`);
  });

  describe.each(CASES)('$rule', ({ good, bad, field, message }) => {
    it('the corrected document passes both', () => {
      expectAccepted(good);
    });

    it('meshwork validate and the schema both refuse it', () => {
      const v = byMeshwork(bad);
      expect(v.ok, `meshwork validate accepted:\n${bad}`).toBe(false);
      if (!v.ok) {
        const here = v.errors.filter((e) => e.field === field);
        expect(here, v.errors.map((e) => `${e.field}: ${e.message}`).join('\n')).not.toHaveLength(0);
        if (message) expect(here.map((e) => e.message).join('\n')).toContain(message);
      }
      expect(bySchema(bad).ok, `the schema accepted:\n${bad}`).toBe(false);
    });
  });

  it('agrees with meshwork validate on durations written with units, at and around each bound', () => {
    // A fixed seed: the same strings every run.
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    /** Field, document, bounds in seconds as decimals: [at least | above (">"), at most]. */
    const fields: Array<[string, (v: string) => string, string, string | undefined]> = [
      ['identity.tokenTtl', (v) => `identity: { tokenTtl: ${v} }`, '30', '3600'],
      ['registry.heartbeatTtl', (v) => `registry: { heartbeatTtl: ${v} }`, '1', undefined],
      ['registry.refreshInterval', (v) => `registry: { refreshInterval: ${v} }`, '0.1', undefined],
      [
        'observability.metrics.flushInterval',
        (v) => `observability: { metrics: { flushInterval: ${v} } }`,
        '0.05',
        '10',
      ],
      ['rateLimits.p.period', (v) => `rateLimits: { p: { limit: 1, period: ${v} } }`, '>0', undefined],
    ];
    const units: Array<[string, bigint, bigint]> = [
      ['ms', 1n, 1000n],
      ['s', 1n, 1n],
      ['m', 60n, 1n],
      ['h', 3600n, 1n],
      ['d', 86400n, 1n],
    ];
    /** A decimal as numerator / denominator. */
    const exact = (decimal: string): [bigint, bigint] => {
      const [int, frac = ''] = decimal.split('.');
      return [BigInt(`${int}${frac}`), 10n ** BigInt(frac.length)];
    };
    let checked = 0;
    let rounded = 0;
    for (const [name, doc, low, high] of fields) {
      const strict = low.startsWith('>');
      const [ln, ld] = exact(low.replace('>', ''));
      const bounds = [Number(low.replace('>', '')), ...(high === undefined ? [] : [Number(high)])];
      for (const [unit, un, ud] of units) {
        const values = ['0', '0.0'];
        for (const bound of bounds) {
          const at = (bound * Number(ud)) / Number(un);
          values.push(at.toString(), at.toFixed(3), `0${at}`);
          for (let i = 0; i < 40; i++) {
            const v = at * (0.5 + random()) + (random() < 0.2 ? random() : 0);
            values.push(v.toFixed(Math.floor(random() * 7)));
          }
        }
        for (const value of values.filter((v) => !v.includes('e'))) {
          const text = doc(`${value}${unit}`);
          const ours = byMeshwork(text).ok;
          // The value in seconds, exactly: what the schema's patterns judge.
          const [vn, vd] = exact(value);
          const [sn, sd] = [vn * un, vd * ud];
          const aboveLow = strict ? sn * ld > ln * sd : sn * ld >= ln * sd;
          const [hn, hd] = high === undefined ? [0n, 0n] : exact(high);
          const inRange = aboveLow && (high === undefined || sn * hd <= hn * sd);
          if (ours !== inRange) {
            // validate multiplies in floating point: a decimal within rounding of a bound (30s
            // written as 0.008333333333333333h) may land on it. Nothing a user writes by hand.
            const seconds = Number(value) * (Number(un) / Number(ud));
            expect(
              bounds.some((b) => Math.abs(seconds - b) <= 1e-12 * Math.max(b, 1)),
              `${name}: ${value}${unit}`,
            ).toBe(true);
            rounded++;
            continue;
          }
          expect(bySchema(text).ok, `${name}: ${value}${unit}: meshwork validate says ${ours}`).toBe(ours);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
    expect(rounded).toBeLessThan(checked / 50);
  });
});
