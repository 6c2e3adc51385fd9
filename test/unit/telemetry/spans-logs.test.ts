import { afterEach, describe, expect, it, vi } from 'vitest';
import { Config } from '../../../src/config/schema.ts';
import { loggedPath, writeAccessLog, type AccessEntry } from '../../../src/telemetry/access-log.ts';
import { responseFlags } from '../../../src/telemetry/flags.ts';
import { compileObservability } from '../../../src/telemetry/plan.ts';
import { otlpTraces, sampledByRatio, unixNanos, type Span } from '../../../src/telemetry/spans.ts';

const obs = (observability: unknown) => compileObservability(Config.parse({ observability }).observability);

describe('OTLP/HTTP JSON encoding', () => {
  const span: Span = {
    traceId: '5b8efff798038103d269b633813fc60c',
    spanId: 'eee19b7ec3c1b174',
    parentSpanId: 'eee19b7ec3c1b173',
    name: 'GET service-a',
    kind: 'server',
    startMs: 1544712660000,
    endMs: 1544712661000.5,
    attributes: { 'http.response.status_code': 200, 'url.path': '/x', 'meshwork.retry': 0, absent: undefined },
    error: false,
  };

  it('has the shape of the specification example: hex ids, nanosecond strings, numeric kinds', () => {
    const body = otlpTraces(
      { service: 'service-a', version: 'v1' },
      [span, { ...span, kind: 'client', error: true }],
      '0.1.0',
    );
    const rs = body.resourceSpans[0]!;
    expect(rs.resource.attributes).toEqual([
      { key: 'service.name', value: { stringValue: 'service-a' } },
      { key: 'service.version', value: { stringValue: 'v1' } },
    ]);
    const [server, client] = rs.scopeSpans[0]!.spans;
    expect(server).toMatchObject({
      traceId: span.traceId,
      spanId: span.spanId,
      parentSpanId: span.parentSpanId,
      kind: 2,
      startTimeUnixNano: '1544712660000000000',
      endTimeUnixNano: '1544712661000500000',
      status: {},
    });
    expect(server!.attributes).toEqual([
      { key: 'http.response.status_code', value: { intValue: '200' } },
      { key: 'url.path', value: { stringValue: '/x' } },
      { key: 'meshwork.retry', value: { intValue: '0' } },
    ]);
    expect(client).toMatchObject({ kind: 3, status: { code: 2 } });
    // A root span has no parentSpanId field at all.
    const root = otlpTraces({ service: 's', version: undefined }, [{ ...span, parentSpanId: undefined }], '0.1.0');
    expect(root.resourceSpans[0]!.scopeSpans[0]!.spans[0]).not.toHaveProperty('parentSpanId');
    expect(unixNanos(1.25)).toBe('1250000');
    expect(unixNanos(1000.9996)).toBe('1001000000');
  });

  it('samples by trace id: the same decision everywhere, close to the ratio overall', () => {
    const ids = Array.from({ length: 4000 }, () => crypto.randomUUID().replace(/-/g, ''));
    const share = ids.filter((id) => sampledByRatio(id, 0.25)).length / ids.length;
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.3);
    for (const id of ids.slice(0, 50)) expect(sampledByRatio(id, 0.25)).toBe(sampledByRatio(id, 0.25));
    expect(sampledByRatio(ids[0]!, 0)).toBe(false);
    expect(sampledByRatio(ids[0]!, 1)).toBe(true);
  });

  it('compiles the collector URL once, and samples nothing without one', () => {
    expect(obs({ tracing: { collector: 'http://127.0.0.1:4318' } }).tracing!.url).toBe(
      'http://127.0.0.1:4318/v1/traces',
    );
    expect(obs({ tracing: { collector: 'https://c.example/v1/traces' } }).tracing!.url).toBe(
      'https://c.example/v1/traces',
    );
    const none = obs({ tracing: { sampling: 1 } });
    expect(none.tracing).toBeUndefined();
    expect(none.sampleNew('5b8efff798038103d269b633813fc60c')).toBe(false);
  });
});

describe('access log lines', () => {
  afterEach(() => vi.restoreAllMocks());

  const entry = (over: Partial<AccessEntry> = {}): AccessEntry => ({
    kind: 'gateway',
    startMs: Date.UTC(2026, 0, 2, 3, 4, 5),
    durationMs: 12,
    requestId: 'r-1',
    traceId: 't'.repeat(32),
    spanId: 's'.repeat(16),
    route: 'service-a',
    caller: 'client',
    service: 'service-a',
    version: 'v1',
    endpoint: 'service-a/SERVICE_A',
    method: 'GET',
    url: new URL('https://x.example/service-a/items?token=SECRET&page=2'),
    status: 200,
    flags: '-',
    user: 'alice',
    auth: 'ok',
    rateLimit: 'allowed',
    retries: 0,
    meshError: undefined,
    clientIp: '203.0.113.9',
    ...over,
  });

  const captured = () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
    return lines;
  };

  it('one JSON line with the fields operators filter on; query values and the client address left out', () => {
    const lines = captured();
    writeAccessLog(obs({}), entry(), () => {});
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('SECRET');
    expect(lines[0]).not.toContain('203.0.113.9');
    expect(JSON.parse(lines[0]!)).toEqual({
      level: 'info',
      msg: 'access',
      kind: 'gateway',
      time: '2026-01-02T03:04:05.000Z',
      requestId: 'r-1',
      traceId: 't'.repeat(32),
      spanId: 's'.repeat(16),
      route: 'service-a',
      caller: 'client',
      service: 'service-a',
      version: 'v1',
      endpoint: 'service-a/SERVICE_A',
      method: 'GET',
      path: '/service-a/items',
      query: '?token=&page=',
      status: 200,
      durationMs: 12,
      flags: '-',
      user: 'alice',
      auth: 'ok',
      rateLimit: 'allowed',
      retries: 0,
    });
  });

  it('writes the user hashed or not at all when configured, and the client address when asked', async () => {
    const lines = captured();
    const waits: Array<Promise<unknown>> = [];
    writeAccessLog(obs({ accessLog: { user: 'hashed', clientIp: true } }), entry(), (p) => waits.push(p));
    await Promise.all(waits);
    writeAccessLog(obs({ accessLog: { user: 'omit' } }), entry(), () => {});
    writeAccessLog(obs({ accessLog: { enabled: false } }), entry(), () => {});
    expect(lines).toHaveLength(2);
    const [hashed, omitted] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    // sha256("alice"), first 16 hex digits.
    expect(hashed!.user).toBe('2bd806c97f0e00af');
    expect(hashed!.clientIp).toBe('203.0.113.9');
    expect(omitted).not.toHaveProperty('user');
  });

  it('successSampling: every error and every answer of the mesh, a share of the successes', () => {
    const lines = captured();
    const sampled = obs({ accessLog: { successSampling: 0.1 } });
    for (let i = 0; i < 2000; i++) writeAccessLog(sampled, entry(), () => {});
    const successes = lines.length;
    expect(successes).toBeGreaterThan(100);
    expect(successes).toBeLessThan(320);
    for (let i = 0; i < 50; i++) writeAccessLog(sampled, entry({ status: 503 }), () => {});
    for (let i = 0; i < 50; i++) writeAccessLog(sampled, entry({ status: 200, meshError: 'fault_injected' }), () => {});
    expect(lines.length - successes).toBe(100);
  });

  it('keeps parameter names, never values', () => {
    expect(loggedPath('/a?x=1&y=%20&x=2')).toEqual({ path: '/a', query: '?x=&y=&x=' });
    expect(loggedPath('/a')).toEqual({ path: '/a', query: undefined });
    // A "name" that is a value in disguise (a token with no "="): not written.
    expect(loggedPath('/a?eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.sig&page=1')).toEqual({ path: '/a', query: '?*&page=' });
  });
});

describe('response flags', () => {
  it("maps the mesh's own answers to Envoy's flags", () => {
    expect(responseFlags('route_not_found', 404, 0)).toBe('NR');
    expect(responseFlags('invalid_token', 401, 0)).toBe('UAEX');
    expect(responseFlags('rate_limited', 429, 0)).toBe('RL');
    expect(responseFlags('no_healthy_backend', 503, 0)).toBe('UH');
    expect(responseFlags('upstream_timeout', 504, 1)).toBe('UT');
    expect(responseFlags('bad_gateway', 502, 0)).toBe('UF');
    expect(responseFlags('fault_injected', 503, 0)).toBe('FI');
    expect(responseFlags(undefined, 503, 2)).toBe('URX');
    expect(responseFlags(undefined, 503, 0)).toBe('-');
    expect(responseFlags(undefined, 200, 1)).toBe('-');
  });
});
