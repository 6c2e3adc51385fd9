import { execFile, spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { formatErrorRate, formatMs, formatRps, formatSeconds, renderTop } from '../../../src/node/cli/top-view.ts';
import type { TelemetryOverview } from '../../../src/telemetry/overview.ts';

/** A minute of traffic as the gateway's telemetry object would report it. */
const OVERVIEW: TelemetryOverview = {
  now: Date.UTC(2026, 3, 21, 12, 34, 56),
  windowSeconds: 60,
  edges: [
    {
      source: 'service-a',
      destination: 'service-b',
      requests: 120,
      errors: 0,
      clientErrors: 0,
      rps: 2,
      errorRate: 0,
      p50Ms: 3.2,
      p99Ms: 48,
      health: 'healthy',
    },
    {
      source: 'gateway',
      destination: 'service-b',
      requests: 6000,
      errors: 600,
      clientErrors: 12,
      rps: 100,
      errorRate: 0.1,
      p50Ms: 12.4,
      p99Ms: 2400,
      health: 'degraded',
    },
    {
      source: 'gateway',
      destination: 'service-a',
      requests: 3,
      errors: 3,
      clientErrors: 0,
      rps: 0.05,
      errorRate: 1,
      p50Ms: 250,
      p99Ms: 990,
      health: 'failure',
    },
    {
      source: 'gateway',
      destination: 'billing',
      requests: 0,
      errors: 0,
      clientErrors: 0,
      rps: 0,
      errorRate: 0,
      p50Ms: null,
      p99Ms: null,
      health: 'idle',
    },
  ],
  hotKeys: [
    { policy: 'per-user', key: 'mallory', allowed: 5, limited: 95 },
    { policy: 'per-user', key: 'alice', allowed: 4, limited: 0 },
  ],
  totals: { requests: 987654, errors: 1234, limited: 95, authFailures: 7, retries: 3 },
};

/** Removes SGR colour sequences (ESC [ n m). */
const uncolored = (text: string) =>
  text
    .split('\x1b')
    .map((part, i) => (i === 0 ? part : part.replace(/^\[\d+m/, '')))
    .join('');

/** The cells of the table row that starts with `source  destination`. */
function row(frame: string, source: string, destination: string): string[] {
  const line = frame.split('\n').find((l) => l.startsWith(`${source} `) && l.split(/\s+/)[1] === destination);
  if (!line) throw new Error(`no row ${source} -> ${destination} in:\n${frame}`);
  return line.trim().split(/\s+/);
}

describe('meshwork top: one frame from the telemetry overview', () => {
  it('shows every edge with RPS, ERR%, P50, P99 and HEALTH, in a stable order', () => {
    const frame = renderTop(OVERVIEW, { url: 'http://127.0.0.1:8787' });
    expect(frame).toMatch(/^SOURCE\s+DESTINATION\s+RPS\s+ERR%\s+P50\s+P99\s+HEALTH$/m);
    expect(row(frame, 'gateway', 'service-b')).toEqual([
      'gateway',
      'service-b',
      '100',
      '10.0%',
      '12ms',
      '2.40s',
      'degraded',
    ]);
    expect(row(frame, 'gateway', 'service-a')).toEqual([
      'gateway',
      'service-a',
      '0.05',
      '100.0%',
      '250ms',
      '990ms',
      'failure',
    ]);
    expect(row(frame, 'service-a', 'service-b')).toEqual([
      'service-a',
      'service-b',
      '2.00',
      '0.0%',
      '3.2ms',
      '48ms',
      'healthy',
    ]);
    // No requests: no error rate and no latency to speak of, rather than 0% and 0 ms.
    expect(row(frame, 'gateway', 'billing')).toEqual(['gateway', 'billing', '0', '-', '-', '-', 'idle']);
    // By source, then destination: rows keep their place from one frame to the next.
    const order = frame
      .split('\n')
      .filter((l) => /^(gateway|service-a) /.test(l))
      .map((l) => l.split(/\s+/).slice(0, 2).join('->'));
    expect(order).toEqual(['gateway->billing', 'gateway->service-a', 'gateway->service-b', 'service-a->service-b']);
  });

  it('aligns the columns', () => {
    const frame = renderTop(OVERVIEW, { url: 'http://127.0.0.1:8787' });
    const lines = frame.split('\n');
    const header = lines.find((l) => l.startsWith('SOURCE'))!;
    const rows = lines.filter((l) => /^(gateway|service-a) /.test(l));
    for (const column of ['DESTINATION', 'RPS', 'ERR%', 'P50', 'P99', 'HEALTH']) {
      const at = header.indexOf(column);
      for (const r of rows) expect(r[at - 1], `${column} in "${r}"`).toBe(' ');
      for (const r of rows) expect(r[at], `${column} in "${r}"`).not.toBe(' ');
    }
  });

  it('shows the window, the time, the totals since the counters began, and the hot keys', () => {
    const frame = renderTop(OVERVIEW, { url: 'http://127.0.0.1:8787' });
    expect(frame.split('\n')[0]).toBe('http://127.0.0.1:8787: last 60s at 12:34:56 UTC');
    expect(frame).toContain(
      'since the counters began: 987654 requests, 1234 errors, 95 rate limited, 7 auth failures, 3 retries',
    );
    const hot = frame.slice(frame.indexOf('HOT KEYS'));
    expect(hot.split('\n').map((l) => l.trim().split(/\s+/))).toEqual([
      ['HOT', 'KEYS'],
      ['POLICY', 'KEY', 'ALLOWED', 'LIMITED'],
      ['per-user', 'mallory', '5', '95'],
      ['per-user', 'alice', '4', '0'],
    ]);
  });

  it('says so when there is no traffic and no rate-limited key', () => {
    const frame = renderTop({ ...OVERVIEW, edges: [], hotKeys: [] }, { url: 'http://127.0.0.1:8787' });
    expect(frame).toContain('no traffic in the last 60s');
    expect(frame).toContain('no rate-limited keys in use');
    expect(frame).not.toContain('SOURCE');
    expect(frame).not.toContain('HOT KEYS');
  });

  it("prints the gateway's data, never runs it: escapes in names and keys are shown as text", () => {
    const frame = renderTop(
      {
        ...OVERVIEW,
        edges: [{ ...OVERVIEW.edges[0]!, source: 'evil\x1b[2J' }],
        hotKeys: [{ policy: 'per-user', key: `\x1b]0;pwned\x07${'k'.repeat(100)}`, allowed: 1, limited: 1 }],
      },
      { url: 'http://127.0.0.1:8787', color: true },
    );
    expect(frame).toContain('evil\\x1b[2J');
    expect(frame).toContain('\\x1b]0;pwned\\x07');
    // The only escape sequences left are the health colours this view adds.
    expect(uncolored(frame)).not.toContain('\x1b');
    // A long key is cut to one cell.
    const keyCell = frame
      .split('\n')
      .find((l) => l.startsWith('per-user'))!
      .trim()
      .split(/\s+/)[1]!;
    expect(keyCell.length).toBe(40);
    expect(keyCell.endsWith('…')).toBe(true);
  });

  it('colours HEALTH only when asked (a terminal), Kiali-style, without breaking the alignment', () => {
    const plain = renderTop(OVERVIEW, { url: 'u' });
    expect(plain).not.toContain('\x1b');
    const coloured = renderTop(OVERVIEW, { url: 'u', color: true });
    expect(row(coloured, 'service-a', 'service-b').at(-1)).toBe('\x1b[32mhealthy\x1b[0m');
    expect(row(coloured, 'gateway', 'service-b').at(-1)).toBe('\x1b[33mdegraded\x1b[0m');
    expect(row(coloured, 'gateway', 'service-a').at(-1)).toBe('\x1b[31mfailure\x1b[0m');
    expect(uncolored(coloured)).toBe(plain);
  });

  it('shows a notice under the title (why the figures are not fresh)', () => {
    const frame = renderTop(OVERVIEW, { url: 'u', notice: 'cannot reach u; retrying' });
    expect(frame.split('\n')[2]).toBe('cannot reach u; retrying');
  });

  it('formats rates, error rates and latencies for a glance', () => {
    expect([0, 0.004, 1.234, 12.34, 123.4, Number.NaN].map(formatRps)).toEqual([
      '0',
      '0.00',
      '1.23',
      '12.3',
      '123',
      '0',
    ]);
    expect([60, 11.778, 5, 0.25].map(formatSeconds)).toEqual(['60s', '12s', '5s', '0.3s']);
    expect(formatErrorRate({ requests: 0, errorRate: 0 })).toBe('-');
    expect(formatErrorRate({ requests: 1000, errorRate: 0.0005 })).toBe('0.1%');
    expect([null, 0.42, 9.94, 10, 999.4, 1500, Number.POSITIVE_INFINITY].map(formatMs)).toEqual([
      '-',
      '0.4ms',
      '9.9ms',
      '10ms',
      '999ms',
      '1.50s',
      '-',
    ]);
  });
});

describe('meshwork top and metrics: options', () => {
  function meshwork(...args: string[]) {
    const env = { ...process.env };
    delete env.MESH_ADMIN_TOKEN;
    delete env.MESHWORK_URL;
    env.MESHWORK_CONFIG = '/nonexistent/meshwork-config.json';
    const r = spawnSync(process.execPath, ['bin/meshwork.js', ...args], { encoding: 'utf8', env });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('rejects an interval that is not a positive number of seconds (usage error, exit 2)', () => {
    for (const interval of ['0', '-1', 'soon']) {
      const r = meshwork('top', `--interval=${interval}`, '--token', 'x'.repeat(32));
      expect(r.code, interval).toBe(2);
      expect(r.stderr).toContain('--interval must be a number of seconds');
    }
  });

  it('never sends the admin token in the clear to another machine', () => {
    for (const command of ['metrics', 'top']) {
      const r = meshwork(command, '--url', 'http://gateway.example.com', '--token', 'x'.repeat(32));
      expect(r.code, command).toBe(2);
      expect(r.stderr).toContain('must use https://');
    }
  });

  it('says what is wrong when no mesh answers (exit 1)', () => {
    // Port 9 (discard): nothing listens there on a test machine.
    for (const command of [['metrics'], ['top', '--once'], ['status', '--watch', '--once']]) {
      const r = meshwork(...command, '--url', 'http://127.0.0.1:9', '--token', 'x'.repeat(32));
      expect(r.code, command.join(' ')).toBe(1);
      expect(r.stderr).toContain('cannot reach http://127.0.0.1:9');
    }
  });

  it("lists both commands in the usage text, and each one's options in its help", () => {
    const r = meshwork('help');
    expect(r.stdout).toMatch(/^ {2}metrics +the gateway's Prometheus metrics/m);
    expect(r.stdout).toMatch(/^ {2}top +live traffic/m);
    expect(meshwork('metrics', '--help').stdout).toMatch(
      /^usage: meshwork metrics \[-o json\|yaml\] \[--url <URL>\] \[--token <TOKEN>\]$/m,
    );
    const top = meshwork('help', 'top').stdout;
    expect(top).toMatch(/^usage: meshwork top \[--interval 2\] \[--once\]/m);
    expect(top).toMatch(/^ {6}--interval <seconds> +seconds between frames/m);
    expect(top).toMatch(/^ {6}--once +one frame, then exit$/m);
  });
});

describe('meshwork top and metrics against a gateway', () => {
  /** The CLI run without blocking this process, which serves it meanwhile. */
  function meshworkAsync(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const env = { ...process.env };
    delete env.MESH_ADMIN_TOKEN;
    delete env.MESHWORK_URL;
    env.MESHWORK_CONFIG = '/nonexistent/meshwork-config.json';
    return new Promise((resolve) => {
      execFile(process.execPath, ['bin/meshwork.js', ...args], { env, encoding: 'utf8' }, (e, stdout, stderr) =>
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr }),
      );
    });
  }

  async function withGateway(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    run: (url: string) => Promise<void>,
  ): Promise<void> {
    const server = createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }

  const TOKEN = 't'.repeat(32);
  // A label value with a control character: legal in the text format, kept as it is in a pipe.
  const METRICS = `# HELP meshwork_requests_total Requests.\n# TYPE meshwork_requests_total counter\nmeshwork_requests_total{route="a\x07b"} 3\n`;

  it('metrics: prints the text exactly as served, with the admin token as the bearer', async () => {
    const seen: Array<string | undefined> = [];
    await withGateway(
      (req, res) => {
        seen.push(`${req.url} ${req.headers.authorization}`);
        res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
        res.end(METRICS);
      },
      async (url) => {
        const r = await meshworkAsync('metrics', '--url', url, '--token', TOKEN);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe(METRICS);
      },
    );
    expect(seen).toEqual([`/_mesh/metrics Bearer ${TOKEN}`]);
  });

  it("metrics and top: a refusal is exit 1 with the gateway's error, and nothing on stdout", async () => {
    await withGateway(
      (_req, res) => {
        res.statusCode = 401;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error: { code: 'invalid_token', message: 'not a valid admin token' } }));
      },
      async (url) => {
        for (const command of [['metrics'], ['top', '--once']]) {
          const r = await meshworkAsync(...command, '--url', url, '--token', TOKEN);
          expect(r.code, command[0]).toBe(1);
          expect(r.stdout).toBe('');
          expect(r.stderr).toContain(
            `${url} refused the admin token from --token (error 401 invalid_token: not a valid admin token)`,
          );
        }
      },
    );
  });

  it('metrics: something that is not Prometheus text is an error, not output', async () => {
    await withGateway(
      (_req, res) => {
        res.setHeader('content-type', 'text/html');
        res.end('<html>login</html>');
      },
      async (url) => {
        const r = await meshworkAsync('metrics', '--url', url, '--token', TOKEN);
        expect(r.code).toBe(1);
        expect(r.stdout).toBe('');
        expect(r.stderr).toContain('answered text/html, not Prometheus text');
      },
    );
  });

  it('top --once: one frame from GET /_mesh/admin/telemetry, then exit 0', async () => {
    await withGateway(
      (req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(req.url === '/_mesh/admin/telemetry' ? JSON.stringify(OVERVIEW) : '{}');
      },
      async (url) => {
        const r = await meshworkAsync('top', '--once', '--url', url, '--token', TOKEN);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe(`${renderTop(OVERVIEW, { url })}\n`);
      },
    );
  });

  it('never follows a redirect with the token', async () => {
    await withGateway(
      (_req, res) => {
        res.statusCode = 302;
        res.setHeader('location', 'https://elsewhere.example.com/');
        res.end();
      },
      async (url) => {
        const r = await meshworkAsync('metrics', '--url', url, '--token', TOKEN);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain('redirected to https://elsewhere.example.com/');
      },
    );
  });
});
