/**
 * Runs a Hono app with `c.var.mesh` set before any of its own middleware: a parent app whose
 * first middleware sets it, with the app's routes mounted under it. The parent is built on the
 * first request, so routes the app adds after withMesh() are included; it keeps the app's path
 * handling (strict or not, custom getPath) and its onError. Unmatched paths get the mesh's JSON
 * 404 (Hono does not expose an app's own notFound handler to reuse).
 */
import { Hono } from 'hono';
import { errorResponse } from '../core/errors.ts';
import { errorText, logEvent } from '../core/log.ts';
import type { MeshContext } from './context.ts';

/** Structural, so any Hono version (or copy) is accepted; method syntax keeps env types compatible. */
export interface HonoLike {
  fetch(request: Request, env?: unknown, ctx?: ExecutionContext): Response | Promise<Response>;
  routes: unknown[];
  route: unknown;
  getPath?: unknown;
}

export type MeshHandler<E> = (
  request: Request,
  env: E,
  ctx: ExecutionContext,
  mesh: MeshContext,
) => Response | Promise<Response>;

export function isHono(h: unknown): h is HonoLike {
  return (
    typeof h === 'object' &&
    h !== null &&
    Array.isArray((h as HonoLike).routes) &&
    typeof (h as HonoLike).route === 'function'
  );
}

export function honoHandler<E>(app: HonoLike): MeshHandler<E> {
  const contexts = new WeakMap<Request, MeshContext>();
  let root: Hono<{ Variables: { mesh: MeshContext } }> | undefined;
  const build = () => {
    const r = new Hono<{ Variables: { mesh: MeshContext } }>(
      typeof app.getPath === 'function' ? { getPath: app.getPath as never } : {},
    );
    r.use('*', async (c, next) => {
      c.set('mesh', contexts.get(c.req.raw)!);
      await next();
    });
    r.route('/', app as unknown as Hono);
    r.notFound((c) =>
      errorResponse(
        404,
        'not_found',
        `no handler for ${c.req.method} ${c.req.path}`,
        contexts.get(c.req.raw)!.requestId,
      ),
    );
    r.onError((err, c) => {
      const mesh = contexts.get(c.req.raw)!;
      logEvent('error', 'handler error', { service: mesh.service, requestId: mesh.requestId, error: errorText(err) });
      return errorResponse(500, 'internal', `${mesh.service} failed to handle the request`, mesh.requestId);
    });
    return r;
  };
  return (request, env, ctx, mesh) => {
    contexts.set(request, mesh);
    root ??= build();
    return root.fetch(request, env, ctx);
  };
}
