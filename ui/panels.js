/**
 * The dashboard's tables: the route table (GET config), the registry's endpoints and their
 * health (GET status), the rate-limit hot keys and the totals (GET telemetry).
 */
import { h, show } from './dom.js';
import { formatAgo, formatCount, formatPeriod } from './format.js';

function pathText(path) {
  if (!path) return '/*';
  if (path.exact !== undefined) return path.exact;
  if (path.prefix !== undefined) return path.prefix === '/' ? '/*' : `${path.prefix}/*`;
  return path.pattern;
}

function valueText(v) {
  return typeof v === 'string' ? v : `~/${v.regex}/`;
}

function matchItems(route) {
  const matches = route.matches?.length ? route.matches : [{}];
  return matches.map((m) => {
    const methods = m.method === undefined ? [] : Array.isArray(m.method) ? m.method : [m.method];
    const conditions = [
      ...Object.entries(m.headers ?? {}).map(([k, v]) => `${k}: ${valueText(v)}`),
      ...Object.entries(m.query ?? {}).map(([k, v]) => `?${k}=${valueText(v)}`),
    ];
    return h(
      'div',
      { class: 'match' },
      methods.length ? h('span', { class: 'method' }, methods.join(' ')) : null,
      h('code', {}, pathText(m.path)),
      conditions.map((c) => h('span', { class: 'cond' }, c)),
    );
  });
}

/** Weighted entries as percentages of their sum. */
function shares(entries) {
  const total = entries.reduce((s, e) => s + (e.weight ?? 1), 0) || 1;
  return entries.map((e) => ({ ...e, pct: Math.round(((e.weight ?? 1) / total) * 100) }));
}

function backendCell(route, config) {
  if (route.redirect) {
    const r = route.redirect;
    const target = [r.scheme ? `${r.scheme}://` : '', r.hostname ?? '', r.port ? `:${r.port}` : ''].join('');
    const path = r.path?.replaceFullPath ?? (r.path?.replacePrefixMatch ? `${r.path.replacePrefixMatch}/*` : '');
    return h('td', {}, h('span', { class: 'pill' }, `redirect ${r.statusCode}`), ' ', `${target}${path}` || 'same URL');
  }
  const refs = route.backendRefs
    ? shares(route.backendRefs).map((b) => ({ label: `${b.service}${b.version ? `@${b.version}` : ''}`, pct: b.pct }))
    : [];
  if (route.service) {
    const backends = config.services?.[route.service]?.backends ?? [];
    const versions = route.version
      ? [{ label: route.version, pct: 100 }]
      : shares(backends.filter((b) => b.version)).map((b) => ({ label: b.version, pct: b.pct }));
    return h(
      'td',
      {},
      h('span', { class: 'svc' }, route.service),
      versions.length > 1 || route.version
        ? h(
            'div',
            { class: 'split' },
            versions.map((v) => h('span', { class: 'share' }, `${v.label} ${v.pct}%`)),
          )
        : null,
    );
  }
  return h(
    'td',
    {},
    h(
      'div',
      { class: 'split' },
      refs.map((r) => h('span', { class: 'share' }, `${r.label} ${r.pct}%`)),
    ),
  );
}

function authCell(route) {
  const auth = route.auth;
  if (!auth || auth.mode === 'off') return h('td', {}, h('span', { class: 'muted' }, 'public'));
  if (auth.mode === 'optional') return h('td', {}, h('span', { class: 'pill' }, 'token optional'));
  const claims = Object.entries(auth.claims ?? {}).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('|') : v}`);
  return h(
    'td',
    {},
    h('span', { class: 'pill pill-auth' }, 'JWT'),
    (auth.scopes ?? []).map((s) => h('span', { class: 'scope' }, s)),
    claims.map((c) => h('span', { class: 'scope' }, c)),
  );
}

function limitsCell(route, config) {
  const names = route.rateLimits ?? [];
  if (!names.length) return h('td', {}, h('span', { class: 'muted' }, '–'));
  return h(
    'td',
    {},
    names.map((name) => {
      const p = config.rateLimits?.[name];
      const detail = p ? `${p.limit} / ${formatPeriod(p.period)} by ${(p.key ?? []).join(', ') || 'route'}` : '';
      return h('div', { class: 'limit' }, h('span', { class: 'limit-name' }, name), detail ? ` ${detail}` : '');
    }),
  );
}

export function renderRoutes(el, configResponse) {
  const config = configResponse?.config;
  const routes = config?.routes ?? [];
  if (!routes.length) return show(el, h('p', { class: 'empty' }, 'No routes in the config.'));
  show(
    el,
    h(
      'table',
      { class: 'table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Route', 'Matches', 'Backend', 'Auth', 'Rate limits'].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        routes.map((r) =>
          h(
            'tr',
            { data: { route: r.name } },
            h(
              'td',
              {},
              h('span', { class: 'route-name' }, r.name),
              r.hostnames ? h('div', { class: 'muted small' }, r.hostnames.join(', ')) : null,
            ),
            h('td', {}, matchItems(r)),
            backendCell(r, config),
            authCell(r),
            limitsCell(r, config),
          ),
        ),
      ),
    ),
  );
}

/** The endpoint's name when it says more than its target (a binding is usually named after it). */
function endpointDetail(e) {
  const name = e.endpoint.slice(e.endpoint.indexOf('/') + 1);
  return e.target === `binding ${name}` ? e.target : `${name} · ${e.target}`;
}

const HEALTH_CLASS = { healthy: 'healthy', unhealthy: 'failure', unknown: 'idle' };

export function renderEndpoints(el, status, now) {
  const services = status?.services ?? [];
  if (!services.length) return show(el, h('p', { class: 'empty' }, 'No services registered.'));
  show(
    el,
    services.map((svc) =>
      h(
        'div',
        { class: 'svc-block', data: { service: svc.name } },
        h('div', { class: 'svc-head' }, h('span', { class: 'svc' }, svc.name)),
        h(
          'table',
          { class: 'table compact' },
          h(
            'tbody',
            {},
            svc.endpoints.map((e) =>
              h(
                'tr',
                { data: { endpoint: e.endpoint, health: e.health, rotation: e.inRotation ? 'in' : 'out' } },
                h(
                  'td',
                  {},
                  h('span', { class: `dot ${HEALTH_CLASS[e.health] ?? 'idle'}`, title: e.health }),
                  h('span', { class: 'ep' }, e.version ?? 'unversioned'),
                  h('div', { class: 'muted small' }, endpointDetail(e)),
                ),
                h('td', { class: 'num' }, `w ${e.weight}`),
                h(
                  'td',
                  {},
                  h('span', { class: `pill ${e.inRotation ? 'pill-in' : 'pill-out'}` }, e.inRotation ? 'in' : 'out'),
                ),
                h('td', { class: 'muted' }, e.status),
                h('td', { class: 'muted num' }, e.lastHeartbeat ? formatAgo(e.lastHeartbeat, now) : '–'),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

export function renderHotKeys(el, telemetry) {
  if (!telemetry) return show(el, h('p', { class: 'empty' }, 'No traffic data yet.'));
  const keys = telemetry.hotKeys ?? [];
  if (!keys.length)
    return show(
      el,
      h('p', { class: 'empty' }, `No rate-limited traffic in the last ${Math.round(telemetry.windowSeconds)} s.`),
    );
  const most = Math.max(...keys.map((k) => k.allowed + k.limited), 1);
  show(
    el,
    h(
      'table',
      { class: 'table compact' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Key', 'Allowed', 'Limited', ''].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        keys.map((k) =>
          h(
            'tr',
            { data: { policy: k.policy, key: k.key } },
            h(
              'td',
              { class: 'key-cell' },
              h('code', { class: 'key', title: k.key }, k.key),
              h('div', { class: 'muted small' }, k.policy),
            ),
            h('td', { class: 'num' }, formatCount(k.allowed)),
            h('td', { class: `num ${k.limited ? 'limited' : ''}` }, formatCount(k.limited)),
            h(
              'td',
              { class: 'bar-cell', title: `${k.allowed} allowed, ${k.limited} limited` },
              h(
                'div',
                { class: 'bar', style: { width: `${Math.max(4, ((k.allowed + k.limited) / most) * 100)}%` } },
                h('span', { class: 'bar-allowed', style: { 'flex-grow': String(k.allowed) } }),
                h('span', { class: 'bar-limited', style: { 'flex-grow': String(k.limited) } }),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

export function renderTotals(el, telemetry) {
  if (!telemetry) return show(el);
  const t = telemetry.totals;
  const item = (label, value, cls = '') =>
    h(
      'div',
      { class: `total ${cls}` },
      h('span', { class: 'total-value' }, formatCount(value)),
      h('span', { class: 'total-label' }, label),
    );
  show(
    el,
    item('requests', t.requests),
    item('errors', t.errors, t.errors ? 'bad' : ''),
    item('limited', t.limited, t.limited ? 'warn' : ''),
    item('auth failures', t.authFailures),
    item('retries', t.retries),
  );
}
