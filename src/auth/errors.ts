/**
 * Authentication answers per RFC 6750 section 3, with the mesh's JSON error body.
 * error_description values are fixed strings, never text from the token.
 */
import { errorResponse } from '../core/errors.ts';

const REALM = 'realm="meshwork"';

/** 401 without an error code: no token was presented (RFC 6750 3.1). */
export function missingToken(requestId: string): Response {
  return errorResponse(401, 'unauthorized', 'a bearer token is required', requestId, {
    'www-authenticate': `Bearer ${REALM}`,
  });
}

export function invalidToken(requestId: string, description: string): Response {
  // RFC 6750 section 3: error_description may not contain " or \ (the header quotes it).
  return errorResponse(401, 'invalid_token', description, requestId, {
    'www-authenticate': `Bearer ${REALM}, error="invalid_token", error_description="${description.replace(/["\\]/g, "'")}"`,
  });
}

export function insufficientScope(
  requestId: string,
  missing: readonly string[],
  required: readonly string[],
): Response {
  return errorResponse(403, 'insufficient_scope', `missing scope: ${missing.join(' ')}`, requestId, {
    'www-authenticate': `Bearer ${REALM}, error="insufficient_scope", scope="${required.join(' ')}"`,
  });
}

export function forbidden(requestId: string, message: string): Response {
  return errorResponse(403, 'forbidden', message, requestId);
}

/** The keys needed to check tokens cannot be had: the server's problem, so 503, not 401. */
export function authUnavailable(requestId: string, message: string): Response {
  return errorResponse(503, 'auth_unavailable', message, requestId, { 'retry-after': '30' });
}
