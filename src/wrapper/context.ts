/**
 * What a wrapped service sees of the mesh: who called, the request's ids, and a client for
 * calling other services.
 */
import type { MeshBindings } from '../core/bindings.ts';
import type { TraceContext } from '../core/trace.ts';
import type { MeshUser } from '../core/user.ts';

export type { MeshUser } from '../core/user.ts';

export interface MeshFetchInit extends RequestInit {
  /** Call only this version of the target service (otherwise the service's weights decide). */
  version?: string;
}

export interface MeshContext {
  /** This service's name in the mesh config. */
  readonly service: string;
  /**
   * Who called, from a verified mesh identity token: "gateway" or the calling service's name;
   * undefined only for anonymous calls to a service that allows them.
   */
  readonly caller: string | undefined;
  /** The end user the gateway authenticated (from its signed assertion), if any. */
  readonly user: MeshUser | undefined;
  /** The gateway route that admitted the request, when it came through the gateway. */
  readonly route: string | undefined;
  readonly requestId: string;
  readonly trace: TraceContext;
  /**
   * Calls another service through the mesh: resolves it in the same compiled config as the
   * gateway, picks a backend by weight, and propagates request id and trace. Mesh failures come
   * back as responses with the mesh's JSON error body (503 no backend, 502 backend failed), so
   * handlers can pass them on.
   */
  fetch(service: string, path: string, init?: MeshFetchInit): Promise<Response>;
}

/** For Hono apps: `new Hono<{ Variables: MeshVariables }>()` types `c.var.mesh`. */
export type MeshVariables = { mesh: MeshContext };

/**
 * A policy the wrapper runs before the handler, in order; returning a Response answers the
 * request without reaching the handler (e.g. 401/403/429).
 */
export type InboundPolicy = (
  request: Request,
  mesh: MeshContext,
  env: MeshBindings,
) => Response | undefined | Promise<Response | undefined>;
