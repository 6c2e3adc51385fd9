/** The config endpoints: read, apply, diff, roll back, history. */
import type { Hono } from 'hono';
import { makeBundle } from '../../config/bundle.ts';
import { diffBundles } from '../../config/diff.ts';
import type { MeshBundle } from '../../config/schema.ts';
import { positionOf, validateSources, type ConfigIssue, type ConfigSource } from '../../config/validate.ts';
import { fetcherOf, textOf, type MeshBindings } from '../../core/bindings.ts';
import { errorResponse } from '../../core/errors.ts';
import type { MeshRegistry } from '../registry/object.ts';
import { APPLY_SHAPE, ApplyBody, DIFF_SHAPE, DiffBody, ROLLBACK_SHAPE, RollbackBody } from './bodies.ts';
import { readBody, rid, type AdminContext, type AdminEnv } from './context.ts';

type ActiveConfig = { revision: number; bundle: MeshBundle; applied: boolean };

/** The config in force. (Its type is too rich for RPC's inferred types, hence the cast.) */
export async function activeConfig(reg: DurableObjectStub<MeshRegistry>): Promise<ActiveConfig> {
  const active = await (reg.getConfig() as unknown as Promise<unknown>);
  return active as ActiveConfig;
}

/** Validates routes files exactly as `meshwork validate` does, plus what only the gateway can check. */
async function bundleFromFiles(
  files: ConfigSource[],
  env: MeshBindings,
): Promise<{ bundle: MeshBundle } | { errors: ConfigIssue[] }> {
  // Local development lets URL backends point at this machine (network.allowLoopbackBackends).
  const result = validateSources(files, { dev: textOf(env, 'MESHWORK_DEV') === '1' });
  if (!result.ok) return { errors: result.errors };
  const errors: ConfigIssue[] = [];
  const routed = new Set(
    result.config.routes.flatMap((r) => (r.backendRefs ? r.backendRefs.map((b) => b.service) : [r.service!])),
  );
  for (const name of routed) {
    for (const [i, b] of (result.config.services[name]?.backends ?? []).entries()) {
      if (b.binding && !fetcherOf(env, b.binding)) {
        const path = ['services', name, 'backends', i, 'binding'];
        errors.push({
          ...positionOf(files, path),
          field: `services.${name}.backends[${i}].binding`,
          message: `backend binding ${b.binding} is not bound in the gateway (add it to wrangler.toml and deploy first)`,
        });
      }
    }
  }
  if (errors.length) return { errors };
  return { bundle: await makeBundle(result.config, files) };
}

/**
 * An empty or truncated routes file would replace the mesh with nothing (every request 404):
 * refused unless the apply says `force`, naming what would go.
 */
function removesEverything(live: MeshBundle['config'], next: MeshBundle['config']): string | undefined {
  const lists = (what: string, names: string[]) =>
    `${what} ${names.slice(0, 20).join(', ')}${names.length > 20 ? `, and ${names.length - 20} more` : ''}`;
  const gone: string[] = [];
  const liveRoutes = (live.routes ?? []).map((r) => r.name);
  const liveServices = Object.keys(live.services ?? {});
  if (liveRoutes.length > 0 && next.routes.length === 0) gone.push(lists('every route:', liveRoutes));
  if (liveServices.length > 0 && Object.keys(next.services).length === 0)
    gone.push(lists('every service:', liveServices));
  if (gone.length === 0) return undefined;
  return `this config would remove ${gone.join('; and ')}. Nothing was applied; apply with force (meshwork apply --force) if that is what you want`;
}

/** 422 with the mesh's error body plus every issue, each with file, line, column and field. */
function invalid(c: AdminContext, errors: ConfigIssue[]): Response {
  const error = {
    code: 'invalid_config',
    message: `${errors.length} error(s); nothing was applied`,
    requestId: rid(c),
  };
  return new Response(JSON.stringify({ error, errors }), {
    status: 422,
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-request-id': rid(c), 'cache-control': 'no-store' },
  });
}

export function configRoutes(
  app: Hono<AdminEnv>,
  registry: (c: AdminContext) => DurableObjectStub<MeshRegistry>,
): void {
  app.get('/config', async (c) => {
    const active = await activeConfig(registry(c));
    return c.json({
      revision: active.revision,
      version: active.bundle.version,
      applied: active.applied,
      files: active.bundle.sources ?? [],
      config: active.bundle.config,
    });
  });

  app.post('/config', async (c) => {
    const body = await readBody(c, ApplyBody, APPLY_SHAPE);
    if (body instanceof Response) return body;
    const built = await bundleFromFiles(body.files, c.env);
    if ('errors' in built) return invalid(c, built.errors);
    const reg = registry(c);
    if (!body.force) {
      const refusal = removesEverything((await activeConfig(reg)).bundle.config, built.bundle.config);
      if (refusal) return errorResponse(409, 'would_remove_everything', refusal, rid(c));
    }
    const result = await reg.applyConfig(built.bundle, c.get('actor'), body.message);
    await reg.publish();
    return c.json(result);
  });

  app.post('/diff', async (c) => {
    const body = await readBody(c, DiffBody, DIFF_SHAPE);
    if (body instanceof Response) return body;
    const built = await bundleFromFiles(body.files, c.env);
    if ('errors' in built) return invalid(c, built.errors);
    const active = await activeConfig(registry(c));
    return c.json(diffBundles(active.bundle, built.bundle));
  });

  app.post('/rollback', async (c) => {
    const body = await readBody(c, RollbackBody, ROLLBACK_SHAPE);
    if (body instanceof Response) return body;
    const reg = registry(c);
    let revision = 'revision' in body ? body.revision : undefined;
    if ('version' in body) {
      // By config version: the latest revision that carried it (0 if it is the bundled routes).
      const [status, active] = await Promise.all([reg.status(), activeConfig(reg)]);
      const found = [...status.configs].reverse().find((cfg) => cfg.version === body.version);
      const bundled = active.revision === 0 ? active.bundle.version : undefined;
      revision = found?.revision ?? (body.version === bundled ? 0 : undefined);
      if (revision === undefined)
        return errorResponse(409, 'rollback_refused', `config version ${body.version} is not in the history`, rid(c));
    }
    const result = await reg.rollback(revision, c.get('actor'));
    if ('error' in result) return errorResponse(409, 'rollback_refused', result.error, rid(c));
    await reg.publish();
    return c.json(result);
  });

  app.get('/history', async (c) => {
    const status = await registry(c).status();
    return c.json({ configRevision: status.configRevision, configs: status.configs, audit: status.audit });
  });
}
