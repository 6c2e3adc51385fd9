import { env, runDurableObjectAlarm } from 'cloudflare:test';
import { it } from 'vitest';
import { SNAPSHOT_KEY, SNAPSHOT_REVISION_KEY } from '../../src/registry/types.ts';
it('explore', async () => {
  const stub = env.MESH_REGISTRY.get(env.MESH_REGISTRY.idFromName('registry'));
  console.log('status', JSON.stringify(await stub.status()).slice(0, 3000));
  console.log('stats', JSON.stringify(await stub.stats()));
  console.log('kv rev', await env.MESH_KV.get(SNAPSHOT_REVISION_KEY));
  try { console.log('alarm', await runDurableObjectAlarm(stub)); } catch (e) { console.log('alarm err', String(e)); }
  try { console.log('alarm rpc', await (stub as any).alarm()); } catch (e) { console.log('alarm rpc err', String(e)); }
  console.log('sched', typeof (env.SERVICE_A as any).scheduled);
  try { console.log('sched', JSON.stringify(await (env.SERVICE_A as any).scheduled({ cron: '* * * * *' }))); } catch (e) { console.log('sched err', String(e)); }
  await new Promise((r) => setTimeout(r, 500));
  console.log('status', JSON.stringify((await stub.status()).instances));
});
