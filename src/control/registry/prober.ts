/**
 * Health probes of registered endpoints, and the wake-up calls that bring idle config endpoints
 * into the registry.
 */
import { fetcherOf, type MeshBindings } from '../../core/bindings.ts';
import { versionKey, WORKER_ENDPOINT } from '../../core/endpoint.ts';
import { errorText } from '../../core/log.ts';
import type { MeshConfig } from '../../config/schema.ts';
import { HEALTH_PATH } from '../../registry/health.ts';
import type { Instance } from '../../registry/types.ts';

const PROBE_TIMEOUT_MS = 3000;

export type ProbeTarget = { kind: 'binding'; fetcher: Fetcher } | { kind: 'url'; url: string };

/**
 * Where to probe a record: its own binding or URL, or (a worker record) its version's first
 * config endpoint: a version's worker deployment answers the same on each of its bindings.
 */
export function targetOf(inst: Instance, config: MeshConfig, env: MeshBindings): ProbeTarget | undefined {
  let { binding, url } = inst;
  if (!binding && !url) {
    const b = config.services[inst.service]?.backends.find((x) => x.version === inst.version);
    binding = b?.binding;
    url = b?.url;
  }
  if (binding) {
    const fetcher = fetcherOf(env, binding);
    return fetcher ? { kind: 'binding', fetcher } : undefined;
  }
  return url ? { kind: 'url', url } : undefined;
}

export async function probe(inst: Instance, target: ProbeTarget): Promise<{ ok: boolean; detail: string }> {
  try {
    const path = inst.healthPath ?? HEALTH_PATH;
    const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
    const res =
      target.kind === 'binding'
        ? await target.fetcher.fetch(`https://${inst.service}${path}`, { signal })
        : await fetch(new URL(path.replace(/^\//, ''), target.url.endsWith('/') ? target.url : `${target.url}/`), {
            signal,
            redirect: 'manual',
          });
    await res.body?.cancel();
    return { ok: res.status >= 200 && res.status < 300, detail: `HTTP ${res.status}` };
  } catch (e) {
    return { ok: false, detail: errorText(e) };
  }
}

/**
 * Config endpoints whose version's worker never registered (or expired) get a health request
 * too: a wrapped service heartbeats on any request, so this is how an idle deployment (e.g. a
 * version that takes no traffic yet) finds its way into the registry. The answer changes nothing.
 */
export async function wakeUnregistered(
  config: MeshConfig,
  instances: Record<string, Instance>,
  env: MeshBindings,
): Promise<void> {
  const active = new Set(
    Object.values(instances)
      .filter((i) => i.endpoint === WORKER_ENDPOINT && i.status === 'active')
      .map((i) => versionKey(i.service, i.version)),
  );
  const waits: Array<Promise<unknown>> = [];
  for (const [service, svc] of Object.entries(config.services)) {
    for (const b of svc.backends) {
      if (!b.binding || active.has(versionKey(service, b.version))) continue;
      const fetcher = fetcherOf(env, b.binding);
      if (!fetcher) continue;
      waits.push(
        fetcher
          .fetch(`https://${service}${HEALTH_PATH}`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
          .then((r) => r.body?.cancel())
          .catch(() => undefined),
      );
    }
  }
  await Promise.all(waits);
}
