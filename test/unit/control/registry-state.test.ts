/**
 * The registry's rules as pure functions of its state and an injected clock: records expire and
 * come back, configs apply and roll back, and state written before endpoint keys reads in.
 */
import { describe, expect, it } from 'vitest';
import * as history from '../../../src/control/registry/history.ts';
import * as records from '../../../src/control/registry/instances.ts';
import { freshState, loadState, type RegistryState } from '../../../src/control/registry/state.ts';
import type { MeshBundle } from '../../../src/config/schema.ts';
import type { Instance } from '../../../src/registry/types.ts';

const T0 = 1_700_000_000_000;
const bundled = { version: 'bundled000000' } as MeshBundle;
const bundle = (version: string) => ({ version }) as MeshBundle;

describe('endpoint records', () => {
  it('a heartbeat registers the version worker record once, keeps it alive, and revives it after expiry', () => {
    const s = freshState();
    const first = records.heartbeat(s, { service: 'svc', version: 'v1' }, T0);
    expect(first).toMatchObject({
      routing: true,
      instance: { id: 'svc@v1/worker', endpoint: 'worker', source: 'self' },
    });
    expect(records.heartbeat(s, { service: 'svc', version: 'v1' }, T0 + 10_000).routing).toBe(false);
    expect(s.instances['svc@v1/worker']!.lastHeartbeat).toBe(T0 + 10_000);

    expect(records.expireSilent(s, 90_000, T0 + 99_000)).toBe(false);
    expect(records.expireSilent(s, 90_000, T0 + 100_001)).toBe(true);
    expect(s.instances['svc@v1/worker']!.status).toBe('expired');
    expect(s.audit.at(-1)).toMatchObject({ action: 'expire', detail: 'svc@v1/worker: no heartbeat for 90s' });

    expect(records.heartbeat(s, { service: 'svc', version: 'v1' }, T0 + 120_000)).toMatchObject({
      routing: true,
      instance: { status: 'active' },
    });
    expect(s.audit.at(-1)).toMatchObject({ action: 'register', detail: 'svc@v1/worker is heartbeating again' });
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
});

describe('config history', () => {
  it('apply, apply, rollback to the previous, rollback as undo, and what cannot be rolled back to', () => {
    const s: RegistryState = freshState();
    expect(history.applyConfig(s, bundled, bundle('aaaaaaaaaaaa'), 'ops', 'first', T0)).toEqual({
      revision: 1,
      version: 'aaaaaaaaaaaa',
      unchanged: false,
    });
    expect(history.applyConfig(s, bundled, bundle('aaaaaaaaaaaa'), 'ops', undefined, T0).unchanged).toBe(true);
    history.applyConfig(s, bundled, bundle('bbbbbbbbbbbb'), 'ops', undefined, T0);
    expect(history.activeBundle(s, bundled).version).toBe('bbbbbbbbbbbb');
    expect(history.rollback(s, bundled, undefined, 'ops', T0)).toEqual({ revision: 1, version: 'aaaaaaaaaaaa' });
    // An undo of the rollback: back to what was in force before it.
    expect(history.rollback(s, bundled, undefined, 'ops', T0)).toEqual({ revision: 2, version: 'bbbbbbbbbbbb' });
    expect(history.rollback(s, bundled, 0, 'ops', T0)).toEqual({ revision: 0, version: 'bundled000000' });
    expect(history.rollback(s, bundled, 0, 'ops', T0)).toEqual({ error: 'config revision 0 is already in force' });
    expect(history.rollback(s, bundled, 9, 'ops', T0)).toEqual({
      error: 'config revision 9 is not in the history (have: 0, 1, 2)',
    });
    expect(s.audit.map((a) => a.action)).toEqual(['apply', 'apply', 'rollback', 'rollback', 'rollback']);
  });

  it('keeps at most MAX_HISTORY configs', () => {
    const s = freshState();
    for (let i = 0; i < history.MAX_HISTORY + 5; i++)
      history.applyConfig(s, bundled, bundle(i.toString(16).padStart(12, '0')), 'ops', undefined, T0);
    expect(s.configs).toHaveLength(history.MAX_HISTORY);
    expect(s.configs[0]!.revision).toBe(6);
  });
});

describe('state from an earlier meshwork', () => {
  it('reads records keyed "service@version" as endpoint records', () => {
    const old = (id: string, extra: Partial<Instance>) =>
      ({ id, registeredAt: T0, lastHeartbeat: T0, status: 'active', health: 'healthy', ...extra }) as Instance;
    const { state: s, upgraded } = loadState({
      instances: {
        'svc@v1': old('svc@v1', { service: 'svc', version: 'v1', source: 'self' }),
        'svc@ext': old('svc@ext', { service: 'svc', version: 'ext', url: 'https://ext.example', source: 'admin' }),
        other: old('other', { service: 'other', source: 'self' }),
      },
      revision: 7,
      epoch: 'e',
    } as unknown as Partial<RegistryState>);
    expect(Object.keys(s.instances).sort()).toEqual(['other/worker', 'svc@ext/ext.example', 'svc@v1/worker']);
    expect(s.instances['svc@v1/worker']).toMatchObject({ endpoint: 'worker', health: 'healthy' });
    expect(s).toMatchObject({ revision: 7, epoch: 'e', heads: [0] });
    expect(upgraded).toBe(true);
    // Read again, nothing is left to upgrade.
    expect(loadState(JSON.parse(JSON.stringify(s)) as RegistryState).upgraded).toBe(false);
  });
});
