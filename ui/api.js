/* global document, window */
/**
 * The admin API as the page calls it: same origin, with the session cookie the browser holds
 * (HttpOnly: this script never sees it). Writes carry the session's CSRF token from the page's
 * meta tag. A 401 means the session ended (expired, logged out elsewhere, key rotated): back to
 * the login form.
 */

export const BASE = '/_mesh/ui';
const ADMIN = '/_mesh/admin';
const CSRF_HEADER = 'x-meshwork-csrf';

function csrfToken() {
  return document.querySelector('meta[name="meshwork-csrf"]')?.getAttribute('content') ?? '';
}

export class SessionEnded extends Error {}

/** GET an admin endpoint: { status, body } with body parsed JSON (null when not JSON). */
export async function adminGet(path) {
  const res = await fetch(`${ADMIN}/${path}`, {
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { accept: 'application/json' },
  });
  if (res.status === 401) throw new SessionEnded(`${path}: 401`);
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON (a proxy's error page): the status says enough
  }
  return { status: res.status, body };
}

export async function logout() {
  await fetch(`${BASE}/logout`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { [CSRF_HEADER]: csrfToken() },
  });
  window.location.assign(BASE);
}

export function toLogin() {
  window.location.assign(BASE);
}
