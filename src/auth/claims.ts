/**
 * What a verified token grants: its scopes, required claim values, and the headers that carry
 * verified claims to backends.
 */
import type { JWTPayload } from 'jose';

/** Scopes from `scope` (space-separated string or array) and `scp` (string or array). */
export function scopesOf(claims: JWTPayload): string[] {
  const out = new Set<string>();
  for (const v of [claims.scope, claims.scp]) {
    if (typeof v === 'string') for (const s of v.split(' ')) if (s) out.add(s);
    if (Array.isArray(v)) for (const s of v) if (typeof s === 'string' && s) out.add(s);
  }
  return [...out];
}

export interface ClaimRequirement {
  name: string;
  /** Accepted values, compared as strings; an array claim matches if any element does. */
  anyOf: ReadonlySet<string>;
}

export function claimSatisfied(claims: JWTPayload, req: ClaimRequirement): boolean {
  const v = claims[req.name];
  const values = Array.isArray(v) ? v : [v];
  return values.some(
    (x) => (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') && req.anyOf.has(String(x)),
  );
}

/**
 * A header-safe rendering of a claim: strings as they are when printable ASCII, lists joined
 * with spaces, objects as JSON; anything else percent-encoded (RFC 3986) so no claim can inject
 * header syntax.
 */
export function claimHeaderValue(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text =
    typeof value === 'string'
      ? value
      : Array.isArray(value) && value.every((x) => typeof x === 'string')
        ? value.join(' ')
        : JSON.stringify(value);
  return /^[\x20-\x7E]*$/.test(text) ? text : encodeURIComponent(text);
}

/** The [header, value] pairs that carry a user's verified claims to a backend. */
export function claimHeaders(
  user: { scopes: readonly string[]; claims: JWTPayload },
  mapping: ReadonlyArray<readonly [string, string]>,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [claim, header] of mapping) {
    const v = claimHeaderValue(claim === 'scopes' ? user.scopes : user.claims[claim]);
    if (v !== undefined) out.push([header, v]);
  }
  return out;
}
