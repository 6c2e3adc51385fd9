/**
 * The dashboard's responses: its two pages (filled from the templates in ui/, bundled by
 * src/node/project/ui-assets.ts) and its static assets, each with the headers that keep the page to
 * itself: scripts only from this origin (so an injected string can never run), never framed,
 * never cached, never sniffed into another type.
 */
import { UI_ASSETS, UI_PAGES } from '../../generated/ui-assets.ts';

/** Where the gateway mounts the dashboard (gateway/app.ts); the templates' links use it too. */
export const UI_BASE = '/_mesh/ui';

/**
 * No inline script or style at all (the pages have none), data: images for cytoscape's canvas
 * textures, fetches to this origin only, and forms posting only here.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const SECURITY_HEADERS: ReadonlyArray<[string, string]> = [
  ['content-security-policy', CONTENT_SECURITY_POLICY],
  ['x-frame-options', 'DENY'],
  ['x-content-type-options', 'nosniff'],
  ['cache-control', 'no-store'],
  // Not no-referrer: under it browsers send `Origin: null` with a form's POST, and the login's
  // origin check (index.ts) needs the real one. Nothing secret is ever in a URL here anyway.
  ['referrer-policy', 'same-origin'],
  ['cross-origin-opener-policy', 'same-origin'],
  ['cross-origin-resource-policy', 'same-origin'],
];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ESCAPES[ch]!);
}

/** A template with its {{name}} slots filled, every value escaped. */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => escapeHtml(values[name] ?? ''));
}

function html(body: string, status: number, headers: HeadersInit = {}): Response {
  const h = new Headers(headers);
  h.set('content-type', 'text/html; charset=utf-8');
  return new Response(body, { status, headers: h });
}

/** The login form, with what went wrong last time if anything did. */
export function loginPage(error: string | undefined, status = 200, headers?: HeadersInit): Response {
  return html(
    fill(UI_PAGES.login, { base: UI_BASE, error: error ?? '', errorState: error ? 'shown' : 'hidden' }),
    status,
    headers,
  );
}

/** The dashboard for a session: its CSRF token goes in a meta tag for the page's scripts. */
export function dashboardPage(csrf: string, actor: string, expires: number): Response {
  return html(
    fill(UI_PAGES.dashboard, { base: UI_BASE, csrf, actor, expires: new Date(expires * 1000).toISOString() }),
    200,
  );
}

export function assetResponse(name: string): Response | undefined {
  const asset = Object.hasOwn(UI_ASSETS, name) ? UI_ASSETS[name] : undefined;
  if (!asset) return undefined;
  return new Response(asset.body, { headers: { 'content-type': asset.type } });
}
