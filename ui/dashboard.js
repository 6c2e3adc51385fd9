/* global document, window */
/**
 * The dashboard page: reads the admin API every REFRESH_MS and redraws the graph and the panels
 * in place (no reload). Each refresh starts when the previous one has finished, so a slow
 * gateway is never asked twice at once; a hidden tab does not poll.
 *
 * What the page shows is also readable as window.__meshwork (read-only, replaced on every
 * refresh): the graph is a canvas, so tests and tools read its nodes and edges from there.
 */
import { adminGet, logout, SessionEnded, toLogin } from './api.js';
import { byId, h, show } from './dom.js';
import { createGraph, graphModel } from './graph.js';
import { renderEndpoints, renderHotKeys, renderRoutes, renderTotals } from './panels.js';

const REFRESH_MS = 2000;

const graphEl = byId('graph');
const notice = byId('graph-notice');
const graph = createGraph(graphEl);
let state = Object.freeze({ ready: false, refreshes: 0, telemetry: 'loading', nodes: [], edges: [] });
Object.defineProperty(window, '__meshwork', { get: () => state, enumerable: true });

let configVersion = '';
let refreshes = 0;

/** Telemetry is optional: 404 (not deployed yet) shows as "no traffic data yet", not as a failure. */
async function telemetryOf() {
  const r = await adminGet('telemetry');
  if (r.status === 200 && r.body && Array.isArray(r.body.edges)) return { telemetry: r.body, state: 'ok' };
  if (r.status === 404) return { telemetry: null, state: 'absent' };
  return { telemetry: null, state: 'error', error: `telemetry answered ${r.status}` };
}

function setNotice(text) {
  notice.hidden = !text;
  notice.textContent = text ?? '';
}

async function refresh() {
  const [status, config, tel] = await Promise.all([adminGet('status'), adminGet('config'), telemetryOf()]);
  if (status.status !== 200 || config.status !== 200)
    throw new Error(`the admin API answered ${status.status} / ${config.status}`);
  const now = Date.now();
  const model = graphModel(config.body.config, status.body, tel.telemetry);
  graph.update(model);
  graphEl.dataset.telemetry = tel.state;
  if (tel.state === 'absent') setNotice('No traffic data yet');
  else if (tel.state === 'error') setNotice(`No traffic data (${tel.error})`);
  else if (!model.edges.some((e) => e.traffic))
    setNotice(`No traffic in the last ${Math.round(tel.telemetry.windowSeconds)} s`);
  else setNotice(undefined);

  if (config.body.version !== configVersion) {
    configVersion = config.body.version;
    renderRoutes(byId('routes'), config.body);
  }
  renderEndpoints(byId('endpoints'), status.body, now);
  renderHotKeys(byId('hotkeys'), tel.telemetry);
  renderTotals(byId('totals'), tel.telemetry);
  show(
    byId('config-meta'),
    h('span', { class: 'label' }, 'config'),
    h('code', {}, config.body.version),
    h('span', { class: 'muted' }, config.body.applied ? ` revision ${config.body.revision}` : ' bundled routes/'),
  );
  byId('window').textContent = tel.telemetry ? `last ${Math.round(tel.telemetry.windowSeconds)} s` : '';

  refreshes += 1;
  const shown = graph.snapshot();
  state = Object.freeze({
    ready: true,
    refreshes,
    updatedAt: now,
    error: null,
    telemetry: tel.state,
    configVersion,
    nodes: Object.freeze(shown.nodes),
    edges: Object.freeze(shown.edges),
    routes: Object.freeze((config.body.config.routes ?? []).map((r) => r.name)),
    endpoints: Object.freeze(
      (status.body.services ?? []).flatMap((s) =>
        s.endpoints.map((e) => ({ service: s.name, endpoint: e.endpoint, health: e.health, inRotation: e.inRotation })),
      ),
    ),
    hotKeys: Object.freeze(tel.telemetry?.hotKeys ?? []),
    totals: tel.telemetry?.totals ?? null,
  });
  document.body.dataset.refreshes = String(refreshes);
}

function live(ok, text) {
  const dot = byId('live-dot');
  dot.className = `live-dot ${ok ? 'on' : 'off'}`;
  byId('updated').textContent = text;
}

async function tick() {
  if (document.visibilityState !== 'hidden') {
    try {
      await refresh();
      live(true, `live · ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (e instanceof SessionEnded) return toLogin();
      // The gateway restarting or the network gone: keep the last picture, say so, try again.
      state = Object.freeze({ ...state, error: String(e) });
      live(false, `retrying: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  window.setTimeout(() => void tick(), REFRESH_MS);
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') graph.resize();
});
window.addEventListener('resize', () => graph.resize());
byId('logout').addEventListener('click', () => void logout());

void tick();
