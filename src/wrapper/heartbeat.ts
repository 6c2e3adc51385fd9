/**
 * The service side of self-registration: heartbeats to the registry's entrypoint on the gateway
 * (bound as MESH_REGISTRY), at most one per interval per isolate, off the request path.
 */
import { entrypointOf, type MeshBindings } from '../core/bindings.ts';
import { errorText, logEvent } from '../core/log.ts';
import type { RegistryHeartbeat } from '../control/registry/heartbeat.ts';
import type { Plan } from '../plan/compile.ts';
import { HEALTH_PATH } from '../registry/health.ts';
import { REGISTRY_AUDIENCE } from '../registry/types.ts';
import type { MeshRuntime } from '../runtime/runtime.ts';

/** At most one heartbeat per this interval per isolate (and a third of the registry's TTL). */
const HEARTBEAT_EVERY_S = 30;

export class Heartbeat {
  #last = 0;

  constructor(
    readonly service: string,
    readonly runtime: MeshRuntime,
  ) {}

  /** Sends one if due (or `force`), in the background. */
  beat(env: MeshBindings, ctx: ExecutionContext, plan: Plan, version: string | undefined, force: boolean): void {
    const registry = entrypointOf<RegistryHeartbeat>(env, 'MESH_REGISTRY', 'heartbeat');
    if (!registry) return;
    const every = Math.min(HEARTBEAT_EVERY_S, plan.config.registry.heartbeatTtl / 3) * 1000;
    const now = Date.now();
    if (!force && now - this.#last < every) return;
    this.#last = now;
    const service = this.service;
    const beat = (async () => {
      // The registry believes only a service's own signed identity.
      const token = await this.runtime.identity(plan.identity).minter.identityFor(REGISTRY_AUDIENCE, env);
      const answer = await registry.heartbeat(token, {
        service,
        ...(version ? { version } : {}),
        healthPath: HEALTH_PATH,
      });
      if (!answer.ok) throw new Error(answer.error);
    })().catch((e: unknown) => logEvent('warn', 'registry heartbeat failed', { service, error: errorText(e) }));
    ctx.waitUntil(beat);
  }
}
