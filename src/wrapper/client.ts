/**
 * The mesh client behind `mesh.fetch(service, path)`: east-west calls over service bindings,
 * resolved through the compiled mesh config.
 */
import { claimHeaders } from '../auth/claims.ts';
import { KeysUnavailable } from '../auth/keys.ts';
import { IDENTITY_HEADER, USER_HEADER, type MeshUser } from '../identity/tokens.ts';
import { pickBackend, type CompiledMesh } from '../mesh/compile.ts';
import { errorResponse } from '../mesh/errors.ts';
import { REQUEST_ID_HEADER, stripHopByHop } from '../mesh/headers.ts';
import { setTraceHeaders, type TraceContext } from '../mesh/trace.ts';
import { logEvent, upstreamFor, upstreamUrl, type MeshEnv } from '../mesh/upstream.ts';
import type { MeshFetchInit } from './context.ts';

export interface ClientScope {
  mesh: CompiledMesh;
  env: MeshEnv;
  self: string;
  requestId: string;
  trace: TraceContext;
  /** The verified end user and the gateway's assertion of it, passed on to the next service. */
  user: MeshUser | undefined;
  userAssertion: string | undefined;
}

export async function meshFetch(
  scope: ClientScope,
  service: string,
  path: string,
  init: MeshFetchInit = {},
): Promise<Response> {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(
      `mesh.fetch(${JSON.stringify(service)}, path): path must start with "/", got ${JSON.stringify(path)}`,
    );
  }
  const { mesh, requestId } = scope;
  if (!mesh.services.has(service)) {
    return errorResponse(503, 'unknown_service', `service "${service}" is not in the mesh`, requestId);
  }
  const { version, ...requestInit } = init;
  const backend = pickBackend(mesh, version === undefined ? { service } : { service, version });
  if (!backend) {
    return errorResponse(
      503,
      'no_backend',
      `no backend available for ${version ? `${service}@${version}` : service}`,
      requestId,
    );
  }
  const upstream = upstreamFor(scope.env, backend);
  if (!upstream) {
    logEvent('error', 'binding missing', { requestId, caller: scope.self, backend: backend.label });
    return errorResponse(503, 'no_backend', `backend ${backend.label} is not bound in ${scope.self}`, requestId);
  }

  // Built outside the try: a malformed call (e.g. a GET with a body) is the caller's bug and
  // throws to it, rather than being reported as a backend failure.
  const request = new Request(upstreamUrl(backend, `http://${service}`, path), requestInit);
  const headers = request.headers;
  // Mesh headers are the mesh's to set: a handler cannot claim to be another caller or user.
  stripHopByHop(headers, true, mesh.extraStrippedHeaders);
  headers.set(REQUEST_ID_HEADER, requestId);
  setTraceHeaders(headers, scope.trace);
  if (scope.user && scope.userAssertion) {
    headers.set(USER_HEADER, scope.userAssertion);
    for (const [name, value] of claimHeaders(scope.user, mesh.claimHeaders)) headers.set(name, value);
  }
  try {
    headers.set(IDENTITY_HEADER, await mesh.identity.minter.identityFor(service, scope.env));
  } catch (e) {
    if (!(e instanceof KeysUnavailable)) throw e;
    logEvent('error', 'mesh signing key unavailable', { requestId, caller: scope.self, error: e.message });
    return errorResponse(
      500,
      'internal',
      `${scope.self} cannot sign its mesh identity (signing key missing or invalid)`,
      requestId,
    );
  }
  try {
    return await upstream.fetch(request);
  } catch (e) {
    logEvent('error', 'backend failed', {
      requestId,
      caller: scope.self,
      backend: backend.label,
      error: String((e as Error)?.message ?? e),
    });
    return errorResponse(502, 'bad_gateway', `backend ${backend.label} failed to answer`, requestId);
  }
}
