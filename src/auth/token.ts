/**
 * Finding the bearer token in a request: Authorization: Bearer (RFC 6750 section 2.1) by
 * default, or a named header or cookie.
 */
import type { TokenSourceSpec } from '../config/schema.ts';

export type TokenLookup = { kind: 'none' } | { kind: 'token'; token: string } | { kind: 'malformed' };

// b64token per RFC 6750; anything else after "Bearer " is malformed.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export function cookieValue(cookieHeader: string | null, name: string): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function extractToken(headers: Headers, source: TokenSourceSpec): TokenLookup {
  if (source.cookie !== undefined) {
    const v = cookieValue(headers.get('cookie'), source.cookie);
    return v ? { kind: 'token', token: v } : { kind: 'none' };
  }
  const name = source.header!.toLowerCase();
  const value = headers.get(name);
  if (value === null || value.trim() === '') return { kind: 'none' };
  if (name === 'authorization') {
    // Another scheme (Basic, ...) is not a bearer token at all: treated as no token.
    if (!/^bearer(\s|$)/i.test(value)) return { kind: 'none' };
    const m = BEARER.exec(value);
    return m ? { kind: 'token', token: m[1]! } : { kind: 'malformed' };
  }
  const m = BEARER.exec(value);
  return { kind: 'token', token: m ? m[1]! : value.trim() };
}

/** Removes the token from headers going upstream (forwardToken: false). */
export function removeToken(headers: Headers, source: TokenSourceSpec): void {
  if (source.header !== undefined) {
    headers.delete(source.header);
    return;
  }
  const cookies = headers.get('cookie');
  if (!cookies) return;
  const kept = cookies
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c && c.slice(0, c.indexOf('=')).trim() !== source.cookie);
  if (kept.length) headers.set('cookie', kept.join('; '));
  else headers.delete('cookie');
}
