/**
 * The registry stores configs of any size the admin API takes (up to 1 MiB of routes files),
 * however many are applied: no single stored value can outgrow what storage accepts, the history
 * is bounded by size as well as count, and what status reports is what was stored.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { makeBundle } from '../../../src/config/bundle.ts';
import { validateSources } from '../../../src/config/validate.ts';
import { admin, apply, files, keepRegistryClean, registry, type Json } from './harness.ts';

keepRegistryClean();

/** A routes file of about `kb` KiB: the example services and many routes to them. */
function bigRoutes(kb: number, tag: string): string {
  const lines: string[] = ['routes:'];
  let size = 0;
  for (let i = 0; size < kb * 1024; i++) {
    const line = `  - { name: big-${tag}-${i}, matches: [{ path: { exact: /big/${tag}/${i}/some/long/path/segment } }], service: service-b }`;
    lines.push(line);
    size += line.length + 1;
  }
  return `${lines.join('\n')}\n`;
}

describe('registry storage', () => {
  it('takes one large config after another (650 KiB each), keeps what status says, and rolls back to the first', async () => {
    const revisions: number[] = [];
    for (const tag of ['a', 'b', 'c', 'd', 'e']) {
      const r = await admin('POST', 'config', { body: { files: files(bigRoutes(650, tag)) } });
      expect(r.status, JSON.stringify(r.json).slice(0, 300)).toBe(200);
      revisions.push(r.json.revision);
      const status = (await admin('GET', 'status')).json;
      expect(status.configRevision).toBe(r.json.revision);
    }
    const history = (await admin('GET', 'history')).json;
    expect(history.configs.map((c: Json) => c.revision)).toEqual(expect.arrayContaining(revisions));
    for (const c of history.configs) expect(c.bytes).toBeGreaterThan(650 * 1024);
    // The first of them, read back from storage (it is no longer the one in memory).
    const back = await admin('POST', 'rollback', { body: { revision: revisions[0] } });
    expect(back.status).toBe(200);
    const config = (await admin('GET', 'config')).json;
    expect(config.revision).toBe(revisions[0]);
    expect(config.files.find((f: Json) => f.name === 'extra.yaml').text).toContain('big-a-0');
    // (The stub's inferred type of getConfig is too rich for RPC's types, as in the admin API.)
    const reg = registry() as unknown as { getConfig(): Promise<{ revision: number }> };
    expect((await reg.getConfig()).revision).toBe(revisions[0]);
  }, 120_000);

  it('an apply after many still succeeds: the oldest configs make room', async () => {
    await apply(files('registry:\n  refreshInterval: 0.2s\n'));
    expect((await admin('GET', 'status')).status).toBe(200);
  });
});

describe('when storing a change fails', () => {
  it('the change is refused and nothing in memory moves: status and history stay as stored', async () => {
    // The real registry object (test/fixtures/faulty-store.ts) over storage that can fail writes.
    const ns = env.FAULTY_REGISTRY;
    const reg = ns.get(ns.idFromName(`faulty-${crypto.randomUUID()}`));
    const bundle = async (tag: string) => {
      const sources = files(bigRoutes(8, tag));
      const result = validateSources(sources);
      if (!result.ok) throw new Error(JSON.stringify(result.errors));
      return makeBundle(result.config, sources);
    };
    const first = await reg.applyConfig(await bundle('first'), 'test');
    const before = await reg.status();
    expect(before.configRevision).toBe(first.revision);

    await reg.failWrites(true);
    const failed = (p: Promise<unknown>) =>
      p.then(
        () => 'stored',
        (e: Error) => e.message,
      );
    expect(await failed(reg.applyConfig(await bundle('unsaved'), 'test'))).toContain('disk full');
    expect(
      await failed(reg.register({ service: 'service-b', version: 'x', binding: 'SERVICE_B_V1' }, 'test')),
    ).toContain('disk full');
    expect(await failed(reg.rollback(0, 'test'))).toContain('disk full');
    const during = await reg.status();
    expect(during.revision).toBe(before.revision);
    expect(during.configRevision).toBe(first.revision);
    expect(during.configVersion).toBe(before.configVersion);
    expect(during.configs.map((c) => c.revision)).toEqual([first.revision]);
    expect(during.instances).toEqual([]);
    expect(during.audit).toEqual(before.audit);

    // Writes work again: the next change is stored, and the refused ones never were.
    await reg.failWrites(false);
    const next = await reg.applyConfig(await bundle('saved'), 'test');
    expect(next.revision).toBe(first.revision + 1);
    expect((await reg.status()).configs.map((c) => c.version)).toEqual([first.version, next.version]);
  });
});
