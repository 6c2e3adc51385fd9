/**
 * The control-plane API, under /_mesh/admin/ on the gateway. Every call needs either the admin
 * token (wrangler secret MESH_ADMIN_TOKEN) or a JWT from an issuer listed in `admin.issuers`
 * holding the admin scope (default mesh:admin); otherwise 401 and nothing changes. Changes go to
 * the registry object, which records who made them and publishes the new snapshot.
 *
 *   GET    status            services, backends in rotation, instances and their health
 *   GET    config            the config in force (revision, version, files)
 *   POST   config            apply { files: [{ name, text }], message? } (validated like the CLI)
 *   POST   diff              what applying { files } would change
 *   POST   rollback          { revision? } back to an earlier config (default: the previous one)
 *   GET    history           config revisions and the audit log
 *   POST   instances         register an instance { service, version?, binding? | url?, weight?, healthPath? }
 *   DELETE instances/:id     deregister (id: service@version)
 */
import { Hono, type Context } from 'hono';
import { isNode, LineCounter, parseDocument } from 'yaml';
import { validateSources, type ConfigIssue, type ConfigSource } from '../config/validate.ts';
import { configVersion } from '../config/version.ts';
import type { MeshBundle } from '../config/schema.ts';
import { errorResponse } from '../mesh/errors.ts';
import { requestIdFrom } from '../mesh/trace.ts';
import type { MeshEnv } from '../mesh/upstream.ts';
import { inRotation } from '../registry/overlay.ts';
import { diffBundles } from '../registry/diff.ts';
import type { MeshRegistry } from '../registry/registry-object.ts';
import { instanceId, REGISTRY_NAME, type Instance, type InstanceInfo } from '../registry/types.ts';
import type { MeshSource } from '../registry/source.ts';

type AdminEnv = { Bindings: MeshEnv; Variables: { actor: string; requestId: string } };

const MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_ADMIN_SCOPE = 'mesh:admin';

async function sameSecret(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [ha, hb] = await Promise.all([
    crypto.subtle.digest('SHA-256', enc.encode(a)),
    crypto.subtle.digest('SHA-256', enc.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(ha, hb);
}

function registry(env: MeshEnv): DurableObjectStub<MeshRegistry> | undefined {
  const ns = env.MESH_REGISTRY as DurableObjectNamespace<MeshRegistry> | undefined;
  return ns && typeof ns.idFromName === 'function' ? ns.get(ns.idFromName(REGISTRY_NAME)) : undefined;
}

function rid(c: Context<AdminEnv>): string {
  return c.get('requestId');
}

async function readJson<T>(c: Context<AdminEnv>): Promise<T | Response> {
  const text = await c.req.text();
  if (text.length > MAX_BODY_BYTES) return errorResponse(413, 'too_large', 'request body over 1 MiB', rid(c));
  try {
    return JSON.parse(text) as T;
  } catch {
    return errorResponse(400, 'bad_request', 'request body must be JSON', rid(c));
  }
}

function filesOf(body: unknown): ConfigSource[] | undefined {
  const files = (body as { files?: unknown })?.files;
  if (!Array.isArray(files) || files.length === 0) return undefined;
  if (!files.every((f) => typeof f?.name === 'string' && typeof f?.text === 'string')) return undefined;
  return files.map((f: ConfigSource) => ({ name: f.name, text: f.text }));
}

/** Where a field is written in the routes files (a service is defined in one file), for an error that points at it. */
function placeOf(files: ConfigSource[], path: Array<string | number>): Pick<ConfigIssue, 'file' | 'line' | 'column'> {
  for (const f of files) {
    const lines = new LineCounter();
    const node = parseDocument(f.text, { lineCounter: lines }).getIn(path, true);
    if (isNode(node) && node.range) {
      const { line, col } = lines.linePos(node.range[0]);
      return { file: f.name, line, column: col };
    }
  }
  return { file: files[0]!.name, line: 1, column: 1 };
}

/** Validates routes files exactly as `meshwork validate` does, plus what only the gateway can check. */
async function bundleFromFiles(
  files: ConfigSource[],
  env: MeshEnv,
): Promise<{ bundle: MeshBundle } | { errors: ConfigIssue[] }> {
  const result = validateSources(files);
  if (!result.ok) return { errors: result.errors };
  const errors: ConfigIssue[] = [];
  const routed = new Set(
    result.config.routes.flatMap((r) => (r.backendRefs ? r.backendRefs.map((b) => b.service) : [r.service!])),
  );
  for (const name of routed) {
    for (const [i, b] of (result.config.services[name]?.backends ?? []).entries()) {
      const bound = b.binding ? env[b.binding] : true;
      if (b.binding && (typeof bound !== 'object' || bound === null)) {
        const field = `services.${name}.backends[${i}].binding`;
        errors.push({
          ...placeOf(files, ['services', name, 'backends', i, 'binding']),
          field,
          message: `backend binding ${b.binding} is not bound in the gateway (add it to wrangler.toml and deploy first)`,
        });
      }
    }
  }
  if (errors.length) return { errors };
  return { bundle: { version: await configVersion(result.config), config: result.config, sources: files } };
}

/** 422 with the mesh's error body plus every issue, each with file, line, column and field. */
function invalid(c: Context<AdminEnv>, errors: ConfigIssue[]): Response {
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

type ActiveConfig = { revision: number; bundle: MeshBundle; applied: boolean };

/** The config in force. (Its type is too rich for RPC's inferred types, hence the cast.) */
async function activeConfig(env: MeshEnv): Promise<ActiveConfig> {
  return (await registry(env)!.getConfig()) as unknown as ActiveConfig;
}

export function adminApp(source: MeshSource | undefined): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.use('*', async (c, next) => {
    const requestId = requestIdFrom(c.req.raw.headers);
    c.set('requestId', requestId);
    const challenge = { 'www-authenticate': 'Bearer realm="meshwork-admin"' };
    const m = /^Bearer +(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
    if (!m)
      return errorResponse(
        401,
        'unauthorized',
        'the admin API needs Authorization: Bearer <admin token>',
        requestId,
        challenge,
      );
    const token = m[1]!;
    const adminToken = c.env.MESH_ADMIN_TOKEN;
    if (typeof adminToken === 'string' && adminToken.length >= 16 && (await sameSecret(token, adminToken))) {
      // Who, for the audit log: the CLI sends the local user; it is a label, the token is the proof.
      const who = (c.req.header('x-meshwork-actor') ?? '').replace(/[^\w.@-]/g, '').slice(0, 64);
      c.set('actor', who ? `admin-token (${who})` : 'admin-token');
      return next();
    }
    // Brought up to date like a proxied request's: admin calls may be all an isolate receives.
    const mesh = source ? (await source.get(c.env, (p) => c.executionCtx.waitUntil(p))).mesh : undefined;
    const admin = mesh?.config.admin;
    if (mesh && admin?.issuers) {
      const exec = c.executionCtx;
      const r = await mesh.auth.verify(token, new Set(admin.issuers), {
        env: c.env,
        kv: c.env.MESH_KV as KVNamespace | undefined,
        waitUntil: (p) => exec.waitUntil(p),
      });
      if (r.ok && r.user.scopes.includes(admin.scope ?? DEFAULT_ADMIN_SCOPE)) {
        c.set('actor', `${r.user.issuer}:${r.user.sub ?? '?'}`);
        return next();
      }
      if (r.ok)
        return errorResponse(
          403,
          'insufficient_scope',
          `admin tokens need scope ${admin.scope ?? DEFAULT_ADMIN_SCOPE}`,
          requestId,
        );
    }
    return errorResponse(401, 'invalid_token', 'not a valid admin token', requestId, challenge);
  });

  app.use('*', async (c, next) => {
    if (!registry(c.env))
      return errorResponse(503, 'no_registry', 'the gateway has no MESH_REGISTRY Durable Object binding', rid(c));
    return next();
  });

  app.get('/status', async (c) => {
    const reg = registry(c.env)!;
    const [status, active] = await Promise.all([reg.status(), activeConfig(c.env)]);
    const instances = new Map(status.instances.map((i) => [i.id, i as Instance]));
    const services = Object.entries(active.bundle.config.services).map(([name, svc]) => {
      const backends = svc.backends.map((b) => {
        const inst = instances.get(instanceId(name, b.version));
        instances.delete(instanceId(name, b.version));
        return {
          version: b.version ?? null,
          target: b.binding ? `binding ${b.binding}` : `url ${b.url}`,
          weight: b.weight ?? 1,
          inRotation: inst ? inRotation(inst) : true,
          registered: Boolean(inst),
          status: inst?.status ?? 'static',
          health: inst?.health ?? 'unknown',
          lastHeartbeat: inst ? new Date(inst.lastHeartbeat).toISOString() : null,
        };
      });
      return { name, backends };
    });
    // Registered instances the config does not list (they bring their own binding or URL).
    for (const inst of instances.values()) {
      const svc = services.find((s) => s.name === inst.service);
      const row = {
        version: inst.version ?? null,
        target: inst.binding ? `binding ${inst.binding}` : inst.url ? `url ${inst.url}` : '(none)',
        weight: inst.weight ?? 1,
        inRotation: Boolean(svc) && (Boolean(inst.binding) || Boolean(inst.url)) && inRotation(inst),
        registered: true,
        status: inst.status,
        health: inst.health,
        lastHeartbeat: new Date(inst.lastHeartbeat).toISOString(),
      };
      if (svc) svc.backends.push(row);
      else services.push({ name: inst.service, backends: [row] });
    }
    return c.json({
      revision: status.revision,
      configRevision: status.configRevision,
      configVersion: status.configVersion,
      services,
      instances: status.instances,
    });
  });

  app.get('/config', async (c) => {
    const active = await activeConfig(c.env);
    return c.json({
      revision: active.revision,
      version: active.bundle.version,
      applied: active.applied,
      files: active.bundle.sources ?? [],
      config: active.bundle.config,
    });
  });

  app.post('/config', async (c) => {
    const body = await readJson<{ files?: unknown; message?: unknown }>(c);
    if (body instanceof Response) return body;
    const files = filesOf(body);
    if (!files)
      return errorResponse(
        400,
        'bad_request',
        'body must be { "files": [{ "name", "text" }, ...], "message"? }',
        rid(c),
      );
    const built = await bundleFromFiles(files, c.env);
    if ('errors' in built) return invalid(c, built.errors);
    const message = typeof body.message === 'string' ? body.message.slice(0, 500) : undefined;
    const reg = registry(c.env)!;
    const result = await reg.applyConfig(built.bundle, c.get('actor'), message);
    await reg.publish();
    return c.json(result);
  });

  app.post('/diff', async (c) => {
    const body = await readJson<{ files?: unknown }>(c);
    if (body instanceof Response) return body;
    const files = filesOf(body);
    if (!files) return errorResponse(400, 'bad_request', 'body must be { "files": [{ "name", "text" }, ...] }', rid(c));
    const built = await bundleFromFiles(files, c.env);
    if ('errors' in built) return invalid(c, built.errors);
    const active = await activeConfig(c.env);
    return c.json(diffBundles(active.bundle, built.bundle));
  });

  app.post('/rollback', async (c) => {
    const body = await readJson<{ revision?: unknown; version?: unknown }>(c);
    if (body instanceof Response) return body;
    let revision = body.revision;
    if (typeof body.version === 'string') {
      // By config version: the latest revision that carried it (0 if it is the bundled routes).
      const status = await registry(c.env)!.status();
      const found = [...status.configs].reverse().find((cfg) => cfg.version === body.version);
      const bundled =
        (await activeConfig(c.env)).revision === 0 ? (await activeConfig(c.env)).bundle.version : undefined;
      revision = found?.revision ?? (body.version === bundled ? 0 : undefined);
      if (revision === undefined)
        return errorResponse(409, 'rollback_refused', `config version ${body.version} is not in the history`, rid(c));
    }
    if (revision !== undefined && (typeof revision !== 'number' || !Number.isInteger(revision) || revision < 0)) {
      return errorResponse(
        400,
        'bad_request',
        '"revision" must be a config revision number (0 = the bundled routes)',
        rid(c),
      );
    }
    const reg = registry(c.env)!;
    const result = await reg.rollback(revision as number | undefined, c.get('actor'));
    if ('error' in result) return errorResponse(409, 'rollback_refused', result.error, rid(c));
    await reg.publish();
    return c.json(result);
  });

  app.get('/history', async (c) => {
    const status = await registry(c.env)!.status();
    return c.json({ configRevision: status.configRevision, configs: status.configs, audit: status.audit });
  });

  app.post('/instances', async (c) => {
    const body = await readJson<InstanceInfo>(c);
    if (body instanceof Response) return body;
    // The registry's config, not this isolate's copy: a service applied a moment ago counts.
    const services = (await activeConfig(c.env)).bundle.config.services;
    if (typeof body?.service !== 'string' || !services[body.service]) {
      return errorResponse(
        400,
        'bad_request',
        `"service" must name a service in the config (${Object.keys(services).join(', ')})`,
        rid(c),
      );
    }
    if (body.url !== undefined && (typeof body.url !== 'string' || !/^https?:\/\//.test(body.url)))
      return errorResponse(400, 'bad_request', '"url" must be an http(s) URL', rid(c));
    if (body.binding !== undefined && typeof body.binding !== 'string')
      return errorResponse(400, 'bad_request', '"binding" must be a binding name', rid(c));
    if (body.version !== undefined && typeof body.version !== 'string')
      return errorResponse(400, 'bad_request', '"version" must be a string', rid(c));
    if (body.weight !== undefined && (typeof body.weight !== 'number' || body.weight < 0))
      return errorResponse(400, 'bad_request', '"weight" must be a number >= 0', rid(c));
    const metadata = body.metadata;
    if (
      metadata !== undefined &&
      (typeof metadata !== 'object' ||
        metadata === null ||
        Object.keys(metadata).length > 32 ||
        !Object.values(metadata).every((v) => typeof v === 'string' && v.length <= 256))
    ) {
      return errorResponse(400, 'bad_request', '"metadata" must be an object of at most 32 string values', rid(c));
    }
    const info: InstanceInfo = {
      service: body.service,
      ...(body.version ? { version: body.version } : {}),
      ...(body.binding ? { binding: body.binding } : {}),
      ...(body.url ? { url: body.url } : {}),
      ...(body.weight !== undefined ? { weight: body.weight } : {}),
      ...(typeof body.healthPath === 'string' ? { healthPath: body.healthPath } : {}),
      ...(metadata ? { metadata } : {}),
    };
    const reg = registry(c.env)!;
    const inst = await reg.register(info, c.get('actor'));
    await reg.publish();
    return c.json(inst, 201);
  });

  app.delete('/instances/:id', async (c) => {
    const reg = registry(c.env)!;
    const removed = await reg.deregister(c.req.param('id'), c.get('actor'));
    if (!removed) return errorResponse(404, 'not_found', `no instance "${c.req.param('id')}"`, rid(c));
    await reg.publish();
    return c.json({ removed: c.req.param('id') });
  });

  app.all('*', (c) => errorResponse(404, 'not_found', `no admin endpoint ${c.req.method} ${c.req.path}`, rid(c)));
  return app;
}
