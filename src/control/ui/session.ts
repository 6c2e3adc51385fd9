/**
 * The dashboard's login session: a signed cookie, never the admin credential itself.
 *
 *   value = base64url(JSON claims) "." base64url(HMAC-SHA256(key, "meshwork ui session v1\n" + claims))
 *
 * Stateless: the gateway keeps no session table (it has isolates, not a shared store on the
 * request path), so a session ends when it expires or when its key changes. The key is derived
 * from the gateway's admin secrets (sessionKey), so rotating MESH_ADMIN_TOKEN or the gateway's
 * signing key ends every session at once. Logging out clears the browser's cookie.
 *
 * Writes need more than the cookie, which a browser attaches to cross-site requests too
 * (SameSite=Strict aside): the CSRF token, an HMAC of the session value that only a page served
 * to the session holder carries, sent back in CSRF_HEADER. Everything here is a function of its
 * inputs (key, value, clock), so it is tested without a gateway.
 */

/** How long a login lasts at most (a JWT's own expiry may end it sooner). */
export const SESSION_TTL_SECONDS = 8 * 3600;
/** Sent by the dashboard's scripts on every write: the session's CSRF token. */
export const CSRF_HEADER = 'x-meshwork-csrf';
/** Where the cookie goes: the dashboard and the admin API, nothing the gateway forwards. */
export const SESSION_PATH = '/_mesh';

const SESSION_CONTEXT = 'meshwork ui session v1\n';
const CSRF_CONTEXT = 'meshwork ui csrf v1\n';
const KEY_CONTEXT = 'meshwork ui session key v1\n';
/** Claims are small; anything longer is not ours and not parsed. */
const MAX_VALUE_LENGTH = 2048;

/** What a session says: who logged in, with what, until when. */
export interface SessionClaims {
  /** The audit log's actor for what the session changes. */
  actor: string;
  /** What the operator logged in with. A JWT session also names its issuer, checked on every use. */
  kind: 'admin-token' | 'jwt';
  issuer?: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** Random: two logins never share a value or a CSRF token. */
  nonce: string;
}

/**
 * The secrets a session key is made from: the admin token when one is configured, and the
 * gateway's signing key (what a setup with admin JWTs only has). Both go in, so rotating either
 * ends every session; without both there is no key and no login.
 */
export interface KeyMaterial {
  adminToken: string | undefined;
  signingKey: string | undefined;
}

const enc = new TextEncoder();

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function bytesOf(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    return Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (ch) => ch.charCodeAt(0));
  } catch {
    return undefined;
  }
}

function utf8Of(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return undefined;
  }
}

async function mac(key: CryptoKey, context: string, text: string): Promise<string> {
  return b64url(new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(context + text))));
}

let lastKey: { material: string; key: Promise<CryptoKey> } | undefined;

/**
 * The HMAC key for sessions, derived from the material (a hash with its own context string, so
 * it is no key used anywhere else). Cached for the last material an isolate saw.
 */
export function sessionKey(material: KeyMaterial): Promise<CryptoKey> | undefined {
  if (material.adminToken === undefined && material.signingKey === undefined) return undefined;
  const text = JSON.stringify([material.adminToken ?? null, material.signingKey ?? null]);
  if (lastKey?.material !== text) {
    const key = crypto.subtle
      .digest('SHA-256', enc.encode(KEY_CONTEXT + text))
      .then((raw) => crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']));
    lastKey = { material: text, key };
  }
  return lastKey.key;
}

export function newNonce(): string {
  return b64url(crypto.getRandomValues(new Uint8Array(16)));
}

/** The cookie value for `claims`. */
export async function sealSession(key: CryptoKey, claims: SessionClaims): Promise<string> {
  const body = b64url(enc.encode(JSON.stringify(claims)));
  return `${body}.${await mac(key, SESSION_CONTEXT, body)}`;
}

/** The claims of a cookie value signed with `key` and not expired at `now` (seconds); else undefined. */
export async function openSession(key: CryptoKey, value: string, now: number): Promise<SessionClaims | undefined> {
  if (value.length > MAX_VALUE_LENGTH) return undefined;
  const dot = value.indexOf('.');
  if (dot < 0) return undefined;
  const body = value.slice(0, dot);
  const sig = bytesOf(value.slice(dot + 1));
  // crypto.subtle.verify compares in constant time.
  if (!sig || !(await crypto.subtle.verify('HMAC', key, sig, enc.encode(SESSION_CONTEXT + body)))) return undefined;
  const raw = bytesOf(body);
  const json = raw && utf8Of(raw);
  if (json === undefined) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (!isClaims(claims) || claims.exp <= now) return undefined;
  return claims;
}

function isClaims(v: unknown): v is SessionClaims {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Record<string, unknown>;
  return (
    typeof c.actor === 'string' &&
    (c.kind === 'admin-token' || (c.kind === 'jwt' && typeof c.issuer === 'string')) &&
    typeof c.exp === 'number' &&
    typeof c.nonce === 'string'
  );
}

/** The CSRF token of a session: derived from its cookie value, so it is valid for that session only. */
export function csrfToken(key: CryptoKey, value: string): Promise<string> {
  return mac(key, CSRF_CONTEXT, value);
}

/** Whether `sent` (the CSRF header) is the token of the session `value`. */
export async function csrfMatches(key: CryptoKey, value: string, sent: string | undefined): Promise<boolean> {
  if (!sent) return false;
  const expected = await csrfToken(key, value);
  // Both are HMAC outputs of equal length; compare without an early exit.
  if (sent.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ sent.charCodeAt(i);
  return diff === 0;
}

/**
 * The cookie's name. Over https it carries the __Secure- prefix, which browsers accept only
 * from a secure origin with Secure set: a plain-http page on the same host cannot plant one.
 */
export function sessionCookieName(secure: boolean): string {
  return secure ? '__Secure-meshwork_session' : 'meshwork_session';
}

/** Set-Cookie for a new session (an empty value and Max-Age=0 clear it). */
export function sessionCookie(value: string, options: { secure: boolean; maxAge: number }): string {
  const parts = [
    `${sessionCookieName(options.secure)}=${value}`,
    `Path=${SESSION_PATH}`,
    `Max-Age=${Math.max(0, Math.floor(options.maxAge))}`,
    'HttpOnly',
    'SameSite=Strict',
  ];
  if (options.secure) parts.push('Secure');
  return parts.join('; ');
}

export function clearedSessionCookie(secure: boolean): string {
  return sessionCookie('', { secure, maxAge: 0 });
}

/**
 * One cookie's value from a Cookie header. (auth/token.ts has the same parser for tokens read
 * from cookies; the control layer may not import auth/.)
 */
export function cookieOf(header: string | undefined | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}
