/**
 * The topology graph: the gateway and every service of the config as nodes; as edges, the calls
 * the telemetry saw over its window, each with its rate, error % and p99, coloured by health as
 * Kiali draws them. Calls the config allows but nobody made (a route to a service, a service in
 * another's allowCallers) are drawn as grey dashed idle edges, so the shape of the mesh shows
 * before any traffic does.
 */
import cytoscape from './cytoscape.esm.min.js';
import { formatMs, formatPercent, formatRate } from './format.js';

export const HEALTH_COLOURS = {
  healthy: '#3e8635',
  degraded: '#ec7a08',
  failure: '#c9190b',
  idle: '#8a8d90',
};

const RANK = { idle: 0, healthy: 1, degraded: 2, failure: 3 };
const worst = (a, b) => (RANK[b] > RANK[a] ? b : a);

/** Services a route sends to. */
function routeTargets(route) {
  if (route.service) return [route.service];
  return (route.backendRefs ?? []).map((b) => b.service);
}

/** The calls the config allows: gateway -> each routed service; caller -> service by allowCallers. */
function configuredEdges(config) {
  const edges = new Set();
  for (const route of config?.routes ?? []) for (const s of routeTargets(route)) edges.add(`gateway\u0000${s}`);
  for (const [name, svc] of Object.entries(config?.services ?? {}))
    for (const caller of svc.policy?.allowCallers ?? []) edges.add(`${caller}\u0000${name}`);
  return [...edges].map((e) => e.split('\u0000'));
}

/** A service's health as the registry sees it: failure with nothing in rotation, degraded with some out. */
function registryHealth(service) {
  const eps = service?.endpoints ?? [];
  if (eps.length === 0) return 'idle';
  const rotating = eps.filter((e) => e.inRotation);
  if (rotating.length === 0) return 'failure';
  if (rotating.some((e) => e.health === 'unhealthy') || rotating.length < eps.filter((e) => e.weight > 0).length)
    return 'degraded';
  return 'healthy';
}

export function edgeLabel(e) {
  if (!e.requests) return '';
  return `${formatRate(e.rps)}\n${formatPercent(e.errorRate)} err · p99 ${formatMs(e.p99Ms)}`;
}

/**
 * What the graph shows, from the three admin endpoints (telemetry may be null: not there yet).
 * Pure: nodes and edges as plain data.
 */
export function graphModel(config, status, telemetry) {
  const services = new Map((status?.services ?? []).map((s) => [s.name, s]));
  const names = new Set(['gateway', ...Object.keys(config?.services ?? {})]);
  const edges = new Map();
  for (const [source, destination] of configuredEdges(config)) {
    if (source !== 'gateway' && !names.has(source)) continue;
    edges.set(`${source}->${destination}`, {
      id: `${source}->${destination}`,
      source,
      destination,
      requests: 0,
      errors: 0,
      rps: 0,
      errorRate: 0,
      p99Ms: null,
      health: 'idle',
      traffic: false,
    });
  }
  for (const e of telemetry?.edges ?? []) {
    // A caller or destination the config does not name ("unknown": no route chose a service)
    // is drawn while it has traffic, not for the whole life of the counters.
    if (e.requests === 0 && !(names.has(e.source) && names.has(e.destination))) continue;
    names.add(e.source);
    names.add(e.destination);
    const id = `${e.source}->${e.destination}`;
    edges.set(id, {
      id,
      source: e.source,
      destination: e.destination,
      requests: e.requests,
      errors: e.errors,
      rps: e.rps,
      errorRate: e.errorRate,
      p99Ms: e.p99Ms,
      health: e.health,
      traffic: e.requests > 0,
    });
  }
  const inbound = new Map();
  for (const e of edges.values())
    if (e.traffic) inbound.set(e.destination, worst(inbound.get(e.destination) ?? 'idle', e.health));
  const nodes = [...names].map((id) => {
    if (id === 'gateway') return { id, kind: 'gateway', label: 'gateway', health: inbound.get(id) ?? 'healthy' };
    const svc = services.get(id);
    const eps = svc?.endpoints ?? [];
    const known = Boolean(config?.services?.[id]);
    const health = worst(registryHealth(svc), inbound.get(id) ?? 'idle');
    const detail = known
      ? `${eps.filter((e) => e.inRotation).length}/${eps.length} in rotation`
      : id === 'unknown'
        ? 'no service chosen'
        : 'not in the config';
    return { id, kind: known ? 'service' : 'external', label: `${id}\n${detail}`, health };
  });
  return { nodes, edges: [...edges.values()].map((e) => ({ ...e, label: edgeLabel(e) })) };
}

const COLUMN = 290;
const ROW = 170;
const ZIG = 100;

/**
 * Columns by call depth from the gateway (the longest path, so a service called by another sits
 * right of its caller), rows spread within a column, alternate columns shifted a little so an
 * edge skipping a column does not run through the nodes between.
 */
function layeredPositions(model) {
  const out = new Map(model.nodes.map((n) => [n.id, []]));
  for (const e of model.edges) if (e.source !== e.destination) out.get(e.source)?.push(e.destination);
  const depth = new Map([['gateway', 0]]);
  const visiting = new Set();
  const visit = (id, d) => {
    if (visiting.has(id)) return; // a cycle: its back edge sets no depth
    if ((depth.get(id) ?? -1) > d) return;
    depth.set(id, d);
    visiting.add(id);
    for (const next of out.get(id) ?? []) visit(next, d + 1);
    visiting.delete(id);
  };
  visit('gateway', 0);
  const columns = new Map();
  for (const n of model.nodes) {
    const d = depth.get(n.id) ?? 1;
    if (!columns.has(d)) columns.set(d, []);
    columns.get(d).push(n.id);
  }
  const positions = {};
  for (const [d, ids] of columns) {
    ids.sort();
    ids.forEach((id, i) => {
      positions[id] = { x: d * COLUMN, y: (i - (ids.length - 1) / 2) * ROW + (d % 2 === 1 ? -ZIG : 0) };
    });
  }
  return { positions, depth };
}

const STYLE = [
  {
    selector: 'node',
    style: {
      shape: 'round-rectangle',
      width: 168,
      height: 56,
      'background-color': '#ffffff',
      'border-width': 3,
      'border-color': 'data(colour)',
      label: 'data(label)',
      'text-wrap': 'wrap',
      'text-valign': 'center',
      'text-halign': 'center',
      'font-family': 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      'font-size': 14,
      'font-weight': 600,
      color: '#1f2937',
      'line-height': 1.35,
    },
  },
  {
    selector: 'node[kind = "gateway"]',
    style: { 'background-color': '#1e2a4a', color: '#ffffff', shape: 'round-diamond', width: 120, height: 78 },
  },
  { selector: 'node[kind = "external"]', style: { 'border-style': 'dashed' } },
  {
    selector: 'edge',
    style: {
      'curve-style': 'bezier',
      width: 'data(width)',
      'line-color': 'data(colour)',
      'target-arrow-color': 'data(colour)',
      'target-arrow-shape': 'triangle',
      'arrow-scale': 1.1,
      label: 'data(label)',
      'text-wrap': 'wrap',
      'font-family': 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      'font-size': 12,
      'line-height': 1.3,
      color: '#1f2937',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.92,
      'text-background-padding': 3,
      'text-background-shape': 'round-rectangle',
      'text-border-color': 'data(colour)',
      'text-border-width': 1,
      'text-border-opacity': 0.6,
    },
  },
  {
    // An edge skipping a column bends away from the nodes it would cross (see layeredPositions).
    selector: 'edge.skips',
    style: { 'curve-style': 'unbundled-bezier', 'control-point-distances': 'data(bend)', 'control-point-weights': 0.5 },
  },
  { selector: 'edge[!traffic]', style: { 'line-style': 'dashed', 'line-dash-pattern': [6, 5], opacity: 0.6 } },
];

/** The graph in `container`, updated in place on every refresh. */
export function createGraph(container) {
  const cy = cytoscape({
    container,
    style: STYLE,
    layout: { name: 'preset' },
    minZoom: 0.3,
    maxZoom: 1.6,
    wheelSensitivity: 0.3,
    boxSelectionEnabled: false,
    autoungrabify: false,
  });
  let shape = '';

  function update(model) {
    const { positions, depth } = layeredPositions(model);
    const ids = new Set();
    cy.batch(() => {
      for (const n of model.nodes) {
        ids.add(n.id);
        const data = { id: n.id, label: n.label, kind: n.kind, health: n.health, colour: HEALTH_COLOURS[n.health] };
        const el = cy.getElementById(n.id);
        if (el.nonempty()) el.data(data);
        else cy.add({ group: 'nodes', data, position: positions[n.id] });
      }
      for (const e of model.edges) {
        ids.add(e.id);
        const width = e.traffic ? 2 + Math.min(6, Math.log2(1 + e.rps) * 1.6) : 1.5;
        const from = depth.get(e.source) ?? 0;
        const span = (depth.get(e.destination) ?? 1) - from;
        // The columns between are shifted up from an even one and down from an odd one: bend the other way.
        const bend = from % 2 === 0 ? ZIG : -ZIG;
        const colour = HEALTH_COLOURS[e.health] ?? HEALTH_COLOURS.idle;
        const data = { ...e, target: e.destination, colour, width, bend };
        const el = cy.getElementById(e.id);
        if (el.nonempty()) el.data(data);
        else cy.add({ group: 'edges', data });
        cy.getElementById(e.id).toggleClass('skips', span > 1);
      }
      cy.elements()
        .filter((el) => !ids.has(el.id()))
        .remove();
    });
    // Laid out again only when the set of nodes or edges changes: a refresh never moves them.
    const nextShape = [...ids].sort().join('|');
    if (nextShape !== shape) {
      shape = nextShape;
      cy.nodes().forEach((n) => {
        n.position(positions[n.id()]);
      });
      cy.fit(undefined, 56);
    }
  }

  /** What the graph shows, read back from cytoscape (the canvas is not DOM). */
  function snapshot() {
    return {
      nodes: cy.nodes().map((n) => ({ id: n.id(), kind: n.data('kind'), health: n.data('health') })),
      edges: cy.edges().map((e) => ({
        source: e.data('source'),
        destination: e.data('destination'),
        requests: e.data('requests'),
        errors: e.data('errors'),
        rps: e.data('rps'),
        errorRate: e.data('errorRate'),
        p99Ms: e.data('p99Ms'),
        health: e.data('health'),
        traffic: e.data('traffic'),
        label: e.data('label'),
        colour: e.data('colour'),
      })),
    };
  }

  return { update, snapshot, resize: () => cy.resize() };
}
