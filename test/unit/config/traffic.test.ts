import { describe, expect, it } from 'vitest';
import { formatIssue, validateSources } from '../../../src/config/validate.ts';

const config = (traffic: string, route = '') => `services:
  s:
    backends: [{ binding: S }]
    traffic:
${traffic}
routes:
  - name: r
    service: s
${route}`;

const errors = (text: string) => {
  const r = validateSources([{ name: 'mesh.yaml', text }]);
  return r.ok ? [] : r.errors.map(formatIssue);
};

describe('traffic settings in routes/', () => {
  it('defaults: round robin, the Linkerd budget, no outlier detection, no timeouts or retries', () => {
    const r = validateSources([
      { name: 'mesh.yaml', text: 'services:\n  s: { backends: [{ binding: S }] }\nroutes: []\n' },
    ]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.services.s!.traffic).toEqual({
      loadBalancer: { policy: 'RoundRobin' },
      retryBudget: { ratio: 0.2, minPerSecond: 10, ttl: 10 },
    });
  });

  it('a retry section gets Gateway API / Envoy defaults for what it leaves out', () => {
    const r = validateSources([{ name: 'mesh.yaml', text: config('      retry: {}') }]);
    expect(r.ok && r.config.services.s!.traffic.retry).toEqual({
      attempts: 2,
      codes: [502, 503, 504],
      onConnectFailure: true,
      backoff: 0.025,
      unsafeMethods: false,
      maxBodyBytes: 65536,
    });
  });

  it.each([
    [
      '      loadBalancer: { policy: ConsistentHash }',
      '',
      'mesh.yaml:5:21: services.s.traffic.loadBalancer.hashOn: hashOn goes with policy ConsistentHash',
    ],
    [
      '      loadBalancer: { policy: Fastest }',
      '',
      'services.s.traffic.loadBalancer.policy: must be RoundRobin, LeastRequest, Random or ConsistentHash',
    ],
    [
      '      loadBalancer: { policy: ConsistentHash, hashOn: "query:x" }',
      '',
      'hashOn: must be header:<name>, cookie:<name> or claim:<name>',
    ],
    ['      retry: { codes: [404] }', '', 'services.s.traffic.retry.codes[0]'],
    [
      '      outlierDetection: { maxEjectionPercent: 150 }',
      '',
      'services.s.traffic.outlierDetection.maxEjectionPercent',
    ],
    [
      '      retryBudget: {}',
      '    timeouts: { request: 1s, backendRequest: 2s }',
      'routes[0].timeouts.backendRequest: backendRequest may not be longer than request',
    ],
  ])('refuses %s %s with the file, line and field', (traffic, route, expected) => {
    const found = errors(config(traffic, route));
    expect(found.join('\n')).toContain(expected);
  });
});
