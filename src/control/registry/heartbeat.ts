/**
 * The only door services have into the registry: a named entrypoint of the gateway worker that
 * services bind to (`[[services]] ... entrypoint = "RegistryHeartbeat"`). It accepts a
 * heartbeat only with a mesh identity token whose subject is the service it speaks for, and
 * passes on nothing but the service's name, version and health path: a service can keep itself
 * registered, but cannot point traffic anywhere or reach the registry's control-plane methods,
 * which only the gateway's admin API calls.
 */
import { WorkerEntrypoint } from 'cloudflare:workers';
import type { MeshBindings } from '../../core/bindings.ts';
import { normalizeBundle } from '../../config/bundle.ts';
import { Version } from '../../config/schema.ts';
import { bundledConfig } from '../../generated/bundle.ts';
import { IdentityState } from '../../identity/tokens.ts';
import { REGISTRY_AUDIENCE, type RegistryLatest } from '../../registry/types.ts';
import { registryOf } from './object.ts';

const { verifier } = new IdentityState(normalizeBundle(bundledConfig).config.identity);

export interface HeartbeatInfo {
  service: string;
  version?: string;
  healthPath?: string;
}

export class RegistryHeartbeat extends WorkerEntrypoint<MeshBindings> {
  /** Which snapshots are current, for a service's snapshot reader. Nothing secret: no token needed. */
  async latest(): Promise<RegistryLatest> {
    const registry = registryOf(this.env);
    if (!registry) throw new Error('the gateway has no MESH_REGISTRY binding');
    // Awaited: an RPC promise cannot itself be handed on as the answer.
    const latest = await registry.latest();
    return { ...latest };
  }

  /** A refusal is an answer, not an exception: the caller logs it. */
  async heartbeat(
    identityToken: string,
    info: HeartbeatInfo,
  ): Promise<{ ok: true; id: string; status: string } | { ok: false; error: string }> {
    const check = await verifier.verifyIdentity(String(identityToken), REGISTRY_AUDIENCE, {
      env: this.env,
      waitUntil: (p) => this.ctx.waitUntil(p),
    });
    if (!check.ok) return { ok: false, error: `heartbeat refused: ${check.description}` };
    if (check.caller !== info?.service)
      return { ok: false, error: `heartbeat refused: ${check.caller} cannot speak for ${String(info?.service)}` };
    if (info.version !== undefined && !Version.safeParse(info.version).success)
      return {
        ok: false,
        error: `heartbeat refused: version ${JSON.stringify(String(info.version).slice(0, 80))} is not a version label (letters, digits, ".", "_", "-")`,
      };
    const registry = registryOf(this.env);
    if (!registry) return { ok: false, error: 'heartbeat refused: the gateway has no MESH_REGISTRY binding' };
    const healthPath =
      typeof info.healthPath === 'string' && info.healthPath.startsWith('/')
        ? info.healthPath.slice(0, 256)
        : undefined;
    // Its name, version and health path only: a heartbeat cannot point traffic anywhere.
    const result = await registry.heartbeat({
      service: info.service,
      ...(info.version !== undefined ? { version: info.version } : {}),
      ...(healthPath ? { healthPath } : {}),
    });
    if ('refused' in result) return { ok: false, error: `heartbeat refused: ${result.refused}` };
    return { ok: true, ...result };
  }
}
