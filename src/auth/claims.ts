/**
 * What a verified token grants: its scopes, required claim values, and the headers that carry
 * verified claims to backends.
 */
import type { JWTPayload } from 'jose';

// Where the user is made (verify.ts) and where a service reads it back (identity) must agree.
export { scopesOf } from '../core/user.ts';

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
