/**
 * The one error shape every meshwork component answers with:
 *   { "error": { "code", "message", "requestId" } }
 */
export type MeshErrorCode =
  'route_not_found' | 'not_found' | 'unknown_service' | 'no_backend' | 'bad_gateway' | 'internal';

export function errorResponse(
  status: number,
  code: MeshErrorCode | (string & {}),
  message: string,
  requestId: string,
  headers?: HeadersInit,
): Response {
  const h = new Headers(headers);
  h.set('content-type', 'application/json; charset=utf-8');
  h.set('x-request-id', requestId);
  h.set('cache-control', 'no-store');
  const response = new Response(JSON.stringify({ error: { code, message, requestId } }), { status, headers: h });
  meshErrors.set(response, code);
  return response;
}

/**
 * Which answers the mesh itself made, and with which code, for access logs and response flags:
 * kept beside the Response (never in a header a backend could set), and carried over by the
 * helpers that copy a response (withHeaders, relayResponse) through `carryMeshError`.
 */
const meshErrors = new WeakMap<Response, string>();

export function meshErrorOf(response: Response): string | undefined {
  return meshErrors.get(response);
}

export function carryMeshError(from: Response, to: Response): Response {
  const code = meshErrors.get(from);
  if (code !== undefined) meshErrors.set(to, code);
  return to;
}
