/**
 * The registry's rules as pure functions of its state and an injected clock: records expire and
 * come back, configs apply and roll back within the history's bounds, what a change writes, and
 * state written by an earlier meshwork reads in.
 */
import { describe, expect, it } from 'vitest';
import * as history from '../../../src/control/registry/history.ts';
import * as records from '../../../src/control/registry/instances.ts';
import { draftOf, freshState, fromLegacy, type LegacyState } from '../../../src/control/registry/state.ts';
import { changes, CHUNK } from '../../../src/control/registry/layout.ts';
import type { MeshBundle } from '../../../src/config/schema.ts';
import type { Instance } from '../../../src/registry/types.ts';

const T0 = 1_700_000_000_000;
const bundled = { version: 'bundled000000' } as MeshBundle;
const bundle = (version: string, pad = 0) =>
  ({ version, sources: [{ name: 'x.yaml', text: 'x'.repeat(pad) }] }) as MeshBundle;

/** A heartbeat that is not refused. */
function beat(s: ReturnType<typeof freshState>, info: Parameters<typeof records.heartbeat>[1], now: number) {
  const r = records.heartbeat(s, info, now);
  if ('refused' in r) throw new Error(r.refused);
  return r;
}

describe('endpoint records', () => {
  it('a heartbeat registers the version worker record once, keeps it alive, and revives it after expiry', () => {
    const s = freshState();
    const first = beat(s, { service: 'svc', version: 'v1' }, T0);
    expect(first).toMatchObject({
      routing: true,
      instance: { id: 'svc@v1/worker', endpoint: 'worker', source: 'self' },
    });
    const before = s.instances['svc@v1/worker'];
    expect(beat(s, { service: 'svc', version: 'v1' }, T0 + 10_000).routing).toBe(false);
    // A new record object: the old one (the state in force, in the registry) is never changed.
    expect(s.instances['svc@v1/worker']).not.toBe(before);
    expect(before!.lastHeartbeat).toBe(T0);
    expect(s.instances['svc@v1/worker']!.lastHeartbeat).toBe(T0 + 10_000);

    expect(records.expireSilent(s, 90_000, T0 + 99_000)).toBe(false);
    expect(records.expireSilent(s, 90_000, T0 + 100_001)).toBe(true);
    expect(s.instances['svc@v1/worker']!.status).toBe('expired');
    expect(s.audit.at(-1)).toMatchObject({ action: 'expire', detail: 'svc@v1/worker: no heartbeat for 90s' });

    expect(beat(s, { service: 'svc', version: 'v1' }, T0 + 120_000)).toMatchObject({
      routing: true,
      instance: { status: 'active' },
    });
    expect(s.audit.at(-1)).toMatchObject({ action: 'register', detail: 'svc@v1/worker is heartbeating again' });
  });

  it('a service cannot register more than MAX_SELF_VERSIONS versions of itself', () => {
    const s = freshState();
    for (let i = 0; i < records.MAX_SELF_VERSIONS; i++) beat(s, { service: 'svc', version: `v${i}` }, T0);
    expect(records.heartbeat(s, { service: 'svc', version: 'one-more' }, T0)).toEqual({
      refused: `svc already has ${records.MAX_SELF_VERSIONS} self-registered versions (at most ${records.MAX_SELF_VERSIONS})`,
    });
    // Known versions keep heartbeating, and other services are not affected.
    expect(beat(s, { service: 'svc', version: 'v0' }, T0 + 1).routing).toBe(false);
    expect(beat(s, { service: 'other', version: 'v1' }, T0).routing).toBe(true);
  });

  it('operator registrations get keys from their endpoint name, binding or URL, and never expire', () => {
    const s = freshState();
    expect(records.register(s, { service: 'svc', version: 'v1', url: 'https://a.example:8443/x' }, 'ops', T0).id).toBe(
      'svc@v1/a.example:8443',
    );
    expect(records.register(s, { service: 'svc', version: 'v1', binding: 'SVC_B' }, 'ops', T0).id).toBe('svc@v1/SVC_B');
    expect(records.register(s, { service: 'svc', endpoint: 'pod-1', url: 'http://10.0.0.1' }, 'ops', T0).id).toBe(
      'svc/pod-1',
    );
    expect(records.expireSilent(s, 1, T0 + 10_000_000)).toBe(false);
    expect(records.deregister(s, 'svc/pod-1', 'ops', T0)).toBe(true);
    expect(records.deregister(s, 'svc/pod-1', 'ops', T0)).toBe(false);
    expect(Object.keys(s.instances).sort()).toEqual(['svc@v1/SVC_B', 'svc@v1/a.example:8443']);
  });

  it('probe results land on the records as they are when the probes finish', () => {
    const s = freshState();
    records.register(s, { service: 'svc', version: 'v1', url: 'https://a.example' }, 'ops', T0);
    // A heartbeat-like change while the probe was out: kept.
    s.instances['svc@v1/a.example'] = { ...s.instances['svc@v1/a.example']!, weight: 7 };
    const changed = records.recordProbes(
      s,
      [
        { id: 'svc@v1/a.example', ok: false, detail: 'HTTP 503' },
        { id: 'gone/x', ok: true, detail: 'HTTP 200' },
      ],
      T0 + 1,
    );
    expect(changed).toBe(true);
    expect(s.instances['svc@v1/a.example']).toMatchObject({ weight: 7, health: 'unhealthy', lastProbe: { ok: false } });
    expect(s.instances['gone/x']).toBeUndefined();
  });
});

describe('config history', () => {
  it('apply, apply, rollback to the previous, rollback as undo, and what cannot be rolled back to', () => {
    const s = freshState();
    expect(history.applyConfig(s, bundled, bundle('aaaaaaaaaaaa'), 'ops', 'first', T0)).toEqual({
      revision: 1,
      version: 'aaaaaaaaaaaa',
      unchanged: false,
    });
    expect(history.applyConfig(s, bundled, bundle('aaaaaaaaaaaa'), 'ops', undefined, T0).unchanged).toBe(true);
    history.applyConfig(s, bundled, bundle('bbbbbbbbbbbb'), 'ops', undefined, T0);
    expect(history.activeBundle(s, bundled).version).toBe('bbbbbbbbbbbb');
    expect(history.rollbackTarget(s, undefined)).toBe(1);
    expect(history.rollback(s, bundled, 1, 'ops', T0)).toEqual({ revision: 1, version: 'aaaaaaaaaaaa' });
    // An undo of the rollback: back to what was in force before it.
    expect(history.rollbackTarget(s, undefined)).toBe(2);
    expect(history.rollback(s, bundled, 2, 'ops', T0)).toEqual({ revision: 2, version: 'bbbbbbbbbbbb' });
    expect(history.rollback(s, bundled, 0, 'ops', T0)).toEqual({ revision: 0, version: 'bundled000000' });
    expect(history.rollbackTarget(s, 0)).toEqual({ error: 'config revision 0 is already in force' });
    expect(history.rollbackTarget(s, 9)).toEqual({ error: 'config revision 9 is not in the history (have: 0, 1, 2)' });
    expect(s.audit.map((a) => a.action)).toEqual(['apply', 'apply', 'rollback', 'rollback', 'rollback']);
  });

  it('records when the config in force came into force: the revision before it and the time', () => {
    const s = freshState();
    expect(s.configSince).toEqual({ after: -1, at: 0 });
    s.revision = 7; // instance changes before the apply
    history.applyConfig(s, bundled, bundle('aaaaaaaaaaaa'), 'ops', undefined, T0);
    expect(s.configSince).toEqual({ after: 7, at: T0 });
    // An unchanged apply changes nothing; a rollback is a change of config like an apply.
    s.revision = 9;
    history.applyConfig(s, bundled, bundle('aaaaaaaaaaaa'), 'ops', undefined, T0 + 5);
    expect(s.configSince).toEqual({ after: 7, at: T0 });
    history.rollback(s, bundled, 0, 'ops', T0 + 10);
    expect(s.configSince).toEqual({ after: 9, at: T0 + 10 });
  });

  it('keeps at most MAX_HISTORY configs and MAX_HISTORY_BYTES of them, never dropping the one in force', () => {
    const s = freshState();
    for (let i = 0; i < history.MAX_HISTORY + 5; i++)
      history.applyConfig(s, bundled, bundle(i.toString(16).padStart(12, '0')), 'ops', undefined, T0);
    expect(s.configs).toHaveLength(history.MAX_HISTORY);
    expect(s.configs[0]!.revision).toBe(6);
    // Large configs: the oldest go first until the history fits its bytes.
    const big = freshState();
    const size = Math.ceil(history.MAX_HISTORY_BYTES / 3);
    for (let i = 0; i < 5; i++)
      history.applyConfig(big, bundled, bundle(`${i}`.repeat(12), size), 'ops', undefined, T0);
    expect(big.configs.reduce((n, c) => n + c.bytes, 0)).toBeLessThanOrEqual(history.MAX_HISTORY_BYTES);
    expect(big.configs.map((c) => c.revision)).toEqual([4, 5]);
    expect(big.head).toBe(5);
    expect(big.bundles.has(1)).toBe(false);
  });
});

describe('what a change writes', () => {
  it('only what changed, a large config in chunks no storage value could refuse, and nothing for no change', () => {
    const s = freshState();
    const d1 = draftOf(s);
    beat(d1, { service: 'svc', version: 'v1' }, T0);
    d1.revision++;
    const w1 = changes(s, d1);
    expect(Object.keys(w1.put).sort()).toEqual(['audit', 'inst:svc@v1/worker', 'meta']);

    const d2 = draftOf(d1);
    const large = bundle('cccccccccccc', CHUNK * 3);
    history.applyConfig(d2, bundled, large, 'ops', undefined, T0);
    d2.revision++;
    const w2 = changes(d1, d2);
    const chunks = Object.keys(w2.put).filter((k) => k.startsWith('cfg:1:'));
    expect(chunks.length).toBeGreaterThanOrEqual(4);
    expect(chunks.map((k) => w2.put[k] as string).join('')).toBe(JSON.stringify(large));
    for (const k of chunks) expect((w2.put[k] as string).length).toBeLessThanOrEqual(CHUNK);
    expect(w2.put).toHaveProperty('cfgidx');
    expect(w2.put).not.toHaveProperty('inst:svc@v1/worker');

    expect(changes(d2, draftOf(d2))).toEqual({ put: {}, del: [] });
  });
});

describe('state from an earlier meshwork', () => {
  it('reads the one-value state with records keyed "service@version" in today\'s form', () => {
    const old = (id: string, extra: Partial<Instance>) =>
      ({ id, registeredAt: T0, lastHeartbeat: T0, status: 'active', health: 'healthy', ...extra }) as Instance;
    const legacy = {
      instances: {
        'svc@v1': old('svc@v1', { service: 'svc', version: 'v1', source: 'self' }),
        'svc@ext': old('svc@ext', { service: 'svc', version: 'ext', url: 'https://ext.example', source: 'admin' }),
        other: old('other', { service: 'other', source: 'self' }),
      },
      configs: [{ revision: 1, bundle: bundle('dddddddddddd'), appliedAt: T0, appliedBy: 'ops' }],
      head: 1,
      revision: 7,
      epoch: 'e',
      audit: [],
    } as unknown as LegacyState;
    const s = fromLegacy(legacy);
    expect(Object.keys(s.instances).sort()).toEqual(['other/worker', 'svc@ext/ext.example', 'svc@v1/worker']);
    expect(s.instances['svc@v1/worker']).toMatchObject({ endpoint: 'worker', health: 'healthy' });
    expect(s).toMatchObject({ revision: 7, epoch: 'e', heads: [1], head: 1 });
    expect(s.configs).toEqual([expect.objectContaining({ revision: 1, version: 'dddddddddddd' })]);
    expect(history.activeBundle(s, bundled).version).toBe('dddddddddddd');
  });
});
