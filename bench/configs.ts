/**
 * The gateways the bench measures, as routes files: the same service behind each, with one more
 * policy at a time (auth, limits, both), and route tables of growing size.
 */
import { BENCH_ISSUER } from './mesh.ts';

export const SERVICES = `
services:
  service-b:
    backends:
      - binding: SERVICE_B
`;

const issuer = (jwks: string, cache = '') => `
auth:
  issuers:
    bench:
      issuer: ${BENCH_ISSUER}
      audiences: [meshwork]
      algorithms: [ES256]
      jwks: ${jwks}
${cache}`;

/**
 * Never runs out: the bench measures what checking a limit costs, not rejections. Fails closed,
 * so a store call that fails is a failed request (503) and fails the check: admitted open, it
 * would be measured as a cheap success.
 */
const limit = (mode: string, key: string, partitions?: number) => `
rateLimits:
  bench:
    limit: 1000000000
    period: 1s
    key: [${key}]
    mode: ${mode}
    onStoreFailure: closed
${partitions ? `    partitions: ${partitions}\n` : ''}`;

export const route = (extra: string[]) => `
  - name: service-b
    matches: [{ path: { prefix: /service-b } }]
    service: service-b
${extra.map((l) => `    ${l}`).join('\n')}`;

const AUTH = 'auth: { scopes: [read:b] }';
const LIMITED = 'rateLimits: [bench]';

/** A routes table of n routes (exact, prefix and pattern in turn) before the measured route. */
export function manyRoutes(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n - 1; i++) {
    const path =
      i % 3 === 0 ? `{ exact: /svc${i}/x }` : i % 3 === 1 ? `{ prefix: /svc${i} }` : `{ pattern: "/svc${i}/:id" }`;
    lines.push(`  - name: r${i}\n    matches: [{ path: ${path} }]\n    service: service-b`);
  }
  return lines.join('\n');
}

/** service-b behind three endpoints, for the traffic scenarios; the third may be a broken one. */
const threeEndpoints = (third: string, traffic: string) => `
services:
  service-b:
    backends:
      - { binding: SERVICE_B, name: b1 }
      - { binding: SERVICE_B2, name: b2 }
      - { binding: ${third}, name: b3 }
    traffic:
${traffic}
`;

const TRAFFIC = `      loadBalancer: { policy: LeastRequest }
      outlierDetection: {}`;

/**
 * Every scenario but the observed ones measures the mesh without access logs and metrics, so
 * `observed / full` is what observability costs.
 */
const QUIET = `
observability:
  accessLog: { enabled: false }
  metrics: { enabled: false }
`;

/** Access logs, metrics into the telemetry object, and spans exported to a local collector. */
const observed = (collector: string, sampling: number) => `
observability:
  accessLog: { user: hashed }
  metrics: { enabled: true }
  tracing: { collector: ${collector}, sampling: ${sampling} }
`;

export const gateways = (jwks: string, collector: string): Record<string, string> => ({
  ...quiet(quietGateways(jwks)),
  // The production defaults' sampling (1%), and every request traced.
  'gw-observed': `${observed(collector, 0.01)}${issuer(jwks)}${limit('exact', 'claim:sub')}${SERVICES}routes:${route([AUTH, LIMITED])}`,
  'gw-observed-nolog': `${observed(collector, 0.01).replace('accessLog: { user: hashed }', 'accessLog: { enabled: false }')}${issuer(jwks)}${limit('exact', 'claim:sub')}${SERVICES}routes:${route([AUTH, LIMITED])}`,
  'gw-observed-sampled': `${observed(collector, 0.01).replace('accessLog: { user: hashed }', 'accessLog: { user: hashed, successSampling: 0.1 }')}${issuer(jwks)}${limit('exact', 'claim:sub')}${SERVICES}routes:${route([AUTH, LIMITED])}`,
  'gw-observed-all': `${observed(collector, 1)}${issuer(jwks)}${limit('exact', 'claim:sub')}${SERVICES}routes:${route([AUTH, LIMITED])}`,
});

const quiet = (all: Record<string, string>) =>
  Object.fromEntries(Object.entries(all).map(([name, yaml]) => [name, `${QUIET}${yaml}`]));

const quietGateways = (jwks: string): Record<string, string> => ({
  'gw-forward': `${SERVICES}routes:${route([])}`,
  'gw-auth': `${issuer(jwks)}${SERVICES}routes:${route([AUTH])}`,
  'gw-auth-nocache': `${issuer(jwks, '  verifiedCache: { maxEntries: 0 }')}${SERVICES}routes:${route([AUTH])}`,
  'gw-limited': `${limit('exact', 'ip')}${SERVICES}routes:${route([LIMITED])}`,
  'gw-limited-lease': `${limit('lease', 'ip')}${SERVICES}routes:${route([LIMITED])}`,
  'gw-full': `${issuer(jwks)}${limit('exact', 'claim:sub')}${SERVICES}routes:${route([AUTH, LIMITED])}`,
  'gw-full-part': `${issuer(jwks)}${limit('exact', 'claim:sub', 16)}${SERVICES}routes:${route([AUTH, LIMITED])}`,
  'gw-full-lease': `${issuer(jwks)}${limit('lease', 'claim:sub')}${SERVICES}routes:${route([AUTH, LIMITED])}`,
  'gw-traffic': `${issuer(jwks)}${limit('exact', 'claim:sub')}${threeEndpoints('SERVICE_B3', TRAFFIC)}routes:${route([AUTH, LIMITED, 'retry: { attempts: 2 }'])}`,
  // No retries: what clients see is what the endpoints answered, until the bad one is ejected.
  'gw-resilience-503': `${threeEndpoints('UNHEALTHY_503', '      outlierDetection: {}')}routes:${route([])}`,
  'gw-resilience-hang': `${threeEndpoints('UNHEALTHY_HANG', '      outlierDetection: {}')}routes:${route(['timeouts: { request: 1s, backendRequest: 100ms }', 'retry: { attempts: 2, codes: [504] }'])}`,
  'gw-scale-10': `${SERVICES}routes:\n${manyRoutes(10)}${route([])}`,
  'gw-scale-1000': `${SERVICES}routes:\n${manyRoutes(1000)}${route([])}`,
  'gw-scale-10000': `${SERVICES}routes:\n${manyRoutes(10000)}${route([])}`,
});
