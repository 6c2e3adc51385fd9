/**
 * Admin tokens (JWTs for the control-plane API) carry their own audience (admin.audience). The
 * gateway never forwards one: a backend that received it could replay it against /_mesh/admin.
 */
import { decodeJwt } from 'jose';

/** Whether an Authorization header's bearer token is a JWT for `audience` (unverified: only to drop it). */
export function carriesAudience(authorization: string | null, audience: string): boolean {
  if (!authorization) return false;
  const m = /^Bearer +(\S+)\s*$/i.exec(authorization);
  if (!m) return false;
  try {
    const aud = decodeJwt(m[1]!).aud;
    return aud === audience || (Array.isArray(aud) && aud.includes(audience));
  } catch {
    return false;
  }
}
