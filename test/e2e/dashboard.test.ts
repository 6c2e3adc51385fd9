/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against the local
 * mesh as `npm run dev` runs it: log in through the form, see the example services as graph
 * nodes, watch an edge appear with its rate when traffic flows, and its error rate when a
 * backend starts failing, all without reloading the page. The graph is a canvas: the test reads
 * what it shows from the page's read-only window.__meshwork.
 *
 * Leaves a screenshot of the dashboard after the traffic in .meshwork/dashboard.png (untracked);
 * MESHWORK_SCREENSHOT=docs/dashboard.png writes the README's picture instead.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localFetch } from '../support/local-http.ts';
import { startMesh, type RunningMesh } from '../support/mesh-process.ts';

/** What the page exposes (ui/dashboard.js). */
interface ShownEdge {
  source: string;
  destination: string;
  requests: number;
  errors: number;
  rps: number;
  errorRate: number;
  p99Ms: number | null;
  health: string;
  traffic: boolean;
  label: string;
  colour: string;
}
interface Shown {
  ready: boolean;
  refreshes: number;
  telemetry: string;
  nodes: Array<{ id: string; kind: string; health: string }>;
  edges: ShownEdge[];
  routes: string[];
  endpoints: Array<{ service: string; endpoint: string; health: string; inRotation: boolean }>;
  hotKeys: Array<{ policy: string; key: string; allowed: number; limited: number }>;
}
declare global {
  interface Window {
    __meshwork?: Shown;
    __notReloaded?: boolean;
  }
}

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Kiali's colours, as the page draws them (ui/graph.js). */
const COLOURS = { healthy: '#3e8635', degraded: '#ec7a08', failure: '#c9190b', idle: '#8a8d90' };
/** Waits on a page refreshing every 2 s, on a shared two-core machine running the whole mesh. */
const WAIT = 90_000;

let mesh: RunningMesh;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let failing: Server;
let failingUrl: string;
let traffic: { stop(): Promise<void> } | undefined;
const pageProblems: string[] = [];

function adminToken(): string {
  return (JSON.parse(readFileSync('.meshwork/dev-keys.json', 'utf8')) as { adminToken: string }).adminToken;
}

/** A user token from the CLI, as the README's walk-through gets one. */
function devToken(...args: string[]): string {
  const r = spawnSync(process.execPath, ['bin/meshwork.js', 'token', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`meshwork token failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').at(-1)!;
}

/**
 * Requests through the mesh until stopped: /service-a for each user (gateway -> service-a ->
 * service-b; each user is admitted 5 per 10 s, then one per 2 s, the rest answered 429) and the
 * public /service-b (gateway -> service-b).
 */
function sendTraffic(tokens: string[]): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      const paths: Array<[string, Record<string, string>]> = [
        ...tokens.map((t): [string, Record<string, string>] => ['/service-a', { authorization: `Bearer ${t}` }]),
        ['/service-b', {}],
      ];
      await Promise.all(
        paths.map(async ([path, headers]) => {
          try {
            const res = await localFetch(`${mesh.url}${path}`, { headers });
            await res.arrayBuffer();
          } catch {
            // a request lost on a busy machine changes nothing here
          }
        }),
      );
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Waits until the page shows what `check` looks for (evaluated in the page on every refresh). */
async function until<T>(what: string, check: (shown: Shown) => T | undefined | false | null): Promise<T> {
  const deadline = Date.now() + WAIT;
  let last: Shown | undefined;
  for (;;) {
    last = await page.evaluate(() => window.__meshwork);
    const v = last?.ready ? check(last) : undefined;
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for the dashboard to show ${what}; it shows ${JSON.stringify(last)}`);
    await page.waitForFunction((n) => (window.__meshwork?.refreshes ?? 0) > n, last?.refreshes ?? 0, {
      timeout: WAIT,
    });
  }
}

const edge = (shown: Shown, source: string, destination: string) =>
  shown.edges.find((e) => e.source === source && e.destination === destination);

beforeAll(async () => {
  // A backend that is up (its health path answers) but fails every request: a real 500 from a
  // real server, as a broken deploy would.
  failing = createServer((req, res) => {
    const healthy = req.url?.startsWith('/healthz');
    res.writeHead(healthy ? 200 : 500, { 'content-type': 'application/json' });
    res.end(JSON.stringify(healthy ? { ok: true } : { error: 'broken on purpose' }));
  });
  await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
  failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`;
  mesh = await startMesh();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') pageProblems.push(m.text());
  });
  page.on('pageerror', (e) => pageProblems.push(String(e)));
});

afterAll(async () => {
  await traffic?.stop();
  await browser?.close();
  await mesh?.stop();
  await new Promise((r) => failing?.close(r));
});

describe('the dashboard in a browser, against the local mesh', () => {
  it('logs in through the form: the token becomes an HttpOnly, SameSite=Strict session cookie', async () => {
    await page.goto(`${mesh.url}/_mesh/ui`);
    await page.locator('#token').fill('not-the-admin-token');
    await page.locator('button[type="submit"]').click();
    await expect.poll(() => page.locator('.error').textContent()).toContain('Not a valid admin credential');
    expect(await context.cookies()).toEqual([]);

    await page.locator('#token').fill(adminToken());
    await page.locator('button[type="submit"]').click();
    await page.waitForSelector('#graph', { timeout: WAIT });
    expect(new URL(page.url()).pathname).toBe('/_mesh/ui');
    const cookies = await context.cookies();
    expect(cookies).toEqual([
      expect.objectContaining({ name: 'meshwork_session', path: '/_mesh', httpOnly: true, sameSite: 'Strict' }),
    ]);
    expect(cookies[0]!.value).not.toContain(adminToken());
    // HttpOnly: the page's scripts cannot read it.
    expect(await page.evaluate(() => document.cookie)).toBe('');
    await page.evaluate(() => {
      window.__notReloaded = true;
    });
  });

  it('shows the gateway and the example services as graph nodes, the routes and the endpoints', async () => {
    const shown = await until('the example services', (s) => s);
    expect(shown.nodes.map((n) => n.id)).toEqual(expect.arrayContaining(['gateway', 'service-a', 'service-b']));
    expect(shown.routes).toEqual(expect.arrayContaining(['service-a', 'service-b']));
    // The route table as the config has it: /service-a needs read:a and is rate limited per user.
    const routeA = page.locator('#routes tr[data-route="service-a"]');
    await expect.poll(() => routeA.textContent()).toContain('/service-a/*');
    const text = (await routeA.textContent()) ?? '';
    expect(text).toContain('read:a');
    expect(text).toContain('per-user');
    expect(text).toContain('5 / 10s');
    expect(await page.locator('#routes tr[data-route="service-b"]').textContent()).toContain('v1 90%');
    // The registry's endpoints: service-b's two versions.
    await until('service-b v1 and v2 in rotation', (s) =>
      ['SERVICE_B_V1', 'SERVICE_B_V2'].every((ep) =>
        s.endpoints.some((e) => e.service === 'service-b' && e.endpoint.endsWith(`/${ep}`) && e.inRotation),
      ),
    );
  });

  it('without telemetry (404) the page says "no traffic data yet" and still shows the mesh', async () => {
    const other = await context.newPage();
    await other.route('**/_mesh/admin/telemetry', (route) =>
      route.fulfill({ status: 404, contentType: 'application/json', body: '{"error":{"code":"not_found"}}' }),
    );
    await other.goto(`${mesh.url}/_mesh/ui`);
    await other.waitForFunction(() => window.__meshwork?.ready, undefined, { timeout: WAIT });
    expect(await other.evaluate(() => window.__meshwork?.telemetry)).toBe('absent');
    expect(await other.locator('#graph-notice').textContent()).toMatch(/no traffic data yet/i);
    expect(await other.locator('#graph-notice').isVisible()).toBe(true);
    expect(await other.locator('#hotkeys').textContent()).toMatch(/no traffic data yet/i);
    const nodes = await other.evaluate(() => window.__meshwork!.nodes.map((n) => n.id));
    expect(nodes).toEqual(expect.arrayContaining(['gateway', 'service-a', 'service-b']));
    await other.close();
  });

  it('traffic through the mesh shows as the edge service-a -> service-b with its rate, healthy, without a reload', async () => {
    const users = ['dash-alice', 'dash-bob', 'dash-carol'];
    traffic = sendTraffic(users.map((u) => devToken('--sub', u, '--scope', 'read:a', '--ttl', '1h')));
    const ab = await until('traffic on service-a -> service-b', (s) => {
      const e = edge(s, 'service-a', 'service-b');
      return e && e.requests > 0 && e.rps > 0 && s.telemetry === 'ok' && e;
    });
    expect(ab.label).toMatch(/rps/);
    expect(ab.label).toMatch(/p99/);
    expect(ab.health).toBe('healthy');
    expect(ab.colour).toBe(COLOURS.healthy);
    const gb = await until('traffic on gateway -> service-b', (s) => {
      const e = edge(s, 'gateway', 'service-b');
      return e && e.requests > 0 && e;
    });
    expect(gb.errorRate).toBe(0);
    // Each user is limited to 5 per 10 s on /service-a: they show as rate-limit hot keys.
    const hot = await until('a limited user among the hot keys', (s) =>
      s.hotKeys.find((k) => k.policy === 'per-user' && users.includes(k.key) && k.limited > 0),
    );
    expect(hot.allowed).toBeGreaterThan(0);
    expect(await page.locator('#hotkeys').textContent()).toContain(hot.key);
    expect(await page.evaluate(() => window.__notReloaded)).toBe(true);
  });

  it('a failing backend of service-b shows as an error rate on its edges, coloured by health', async () => {
    // Most of service-b's traffic to a new endpoint that answers 500 (its health probe passes).
    const res = await localFetch(`${mesh.url}/_mesh/admin/instances`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        service: 'service-b',
        version: 'v3',
        endpoint: 'broken',
        url: failingUrl,
        weight: 400,
        healthPath: '/healthz',
      }),
    });
    expect(res.status, await res.text()).toBe(201);
    await until('the broken endpoint in rotation', (s) =>
      s.endpoints.some((e) => e.service === 'service-b' && e.endpoint === 'service-b@v3/broken' && e.inRotation),
    );
    const ab = await until('errors on service-a -> service-b', (s) => {
      const e = edge(s, 'service-a', 'service-b');
      return e && e.errors > 0 && e.errorRate > 0 && e;
    });
    expect(['degraded', 'failure']).toContain(ab.health);
    expect(ab.colour).toBe(COLOURS[ab.health as keyof typeof COLOURS]);
    expect(ab.label).toMatch(/[1-9][\d.]*% err/);
    // service-b's node takes the worst health of the calls into it.
    const b = await until('service-b marked by its failing calls', (s) =>
      s.nodes.find((n) => n.id === 'service-b' && n.health !== 'healthy'),
    );
    expect(['degraded', 'failure']).toContain(b.health);
    expect(await page.evaluate(() => window.__notReloaded)).toBe(true);

    // The picture for the README, after a refresh has drawn the latest figures.
    const n = await page.evaluate(() => window.__meshwork!.refreshes);
    await page.waitForFunction((m) => window.__meshwork!.refreshes > m, n, { timeout: WAIT });
    const shot = process.env.MESHWORK_SCREENSHOT ?? '.meshwork/dashboard.png';
    await page.screenshot({ path: shot });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
  });

  it('ran under its strict CSP without a violation or a script error', () => {
    expect(pageProblems.filter((p) => !/status of 401/.test(p))).toEqual([]);
  });

  it('logs out: back to the login form, and the admin API no longer answers the browser', async () => {
    await page.locator('#logout').click();
    await page.waitForSelector('#token', { timeout: WAIT });
    expect(await context.cookies()).toEqual([]);
    const status = await page.evaluate(async () => (await fetch('/_mesh/admin/status')).status);
    expect(status).toBe(401);
  });
});
