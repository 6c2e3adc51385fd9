/** The end user as the mesh knows them: verified at the gateway, asserted to services. */
import type { JWTPayload } from 'jose';

export interface MeshUser {
  sub: string | undefined;
  /** Name of the configured issuer that authenticated the user at the gateway. */
  issuer: string;
  scopes: readonly string[];
  /** The claims of the user's original token. */
  claims: JWTPayload;
}

/** A user the gateway verified from a token, with that token's expiry. */
export interface VerifiedUser extends MeshUser {
  /** Token expiry, seconds since the epoch. */
  exp: number;
}

/** Scopes from `scope` (space-separated string or array) and `scp` (string or array). */
export function scopesOf(claims: JWTPayload): string[] {
  const out = new Set<string>();
  for (const v of [claims.scope, claims.scp]) {
    if (typeof v === 'string') for (const s of v.split(' ')) if (s) out.add(s);
    if (Array.isArray(v)) for (const s of v) if (typeof s === 'string' && s) out.add(s);
  }
  return [...out];
}
