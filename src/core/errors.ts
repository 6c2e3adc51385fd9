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
  return new Response(JSON.stringify({ error: { code, message, requestId } }), { status, headers: h });
}
