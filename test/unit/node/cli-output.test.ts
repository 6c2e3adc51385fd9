/**
 * What the reads print (-o json|yaml, history's table) and the exit codes scripts rely on (diff
 * as kubectl diff), against a stand-in for the gateway's admin API.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { lines, meshwork, REPO, tempDir, withGateway, type Answer, type Seen } from './cli-harness.ts';

const TOKEN = 't'.repeat(32);

const STATUS = {
  configVersion: '8e153b69a26e',
  configRevision: 2,
  revision: 7,
  epoch: 'e',
  services: [
    {
      name: 'service-b',
      endpoints: [
        {
          endpoint: 'service-b@v1/SERVICE_B_V1',
          version: 'v1',
          target: 'binding SERVICE_B_V1',
          weight: 90,
          inRotation: true,
          registered: true,
          status: 'active',
          health: 'healthy',
          lastHeartbeat: new Date().toISOString(),
        },
      ],
    },
  ],
};

const HISTORY = {
  configRevision: 2,
  configs: [
    { revision: 1, version: '7ae87e21a300', appliedAt: Date.UTC(2026, 3, 21, 12, 0, 5), appliedBy: 'alice', bytes: 10 },
    {
      revision: 2,
      version: '0123456789ab',
      appliedAt: Date.UTC(2026, 3, 21, 13, 30, 0),
      appliedBy: 'https://issuer:bob',
      message: 'weights 50/50\x1b[2J',
      bytes: 10,
    },
  ],
  audit: [{ at: 1, actor: 'alice', action: 'apply', detail: 'config revision 1', revision: 1 }],
};

const DIFF_NONE = {
  from: 'aaaaaaaaaaaa',
  to: 'aaaaaaaaaaaa',
  patch: '',
  summary: { routes: {}, services: {}, sections: [] },
};
const DIFF_SOME = {
  from: 'aaaaaaaaaaaa',
  to: 'bbbbbbbbbbbb',
  patch: '--- live\n+++ new\n+  - name: hello\n',
  summary: { routes: { added: ['hello'] }, services: {}, sections: [] },
};

/** A stand-in admin API answering each path with a fixed body. */
function api(bodies: Record<string, Answer>): (req: Seen) => Answer {
  return (req) =>
    bodies[`${req.method} ${req.path}`] ?? {
      status: 404,
      json: { error: { code: 'not_found', message: `no admin endpoint ${req.method} ${req.path}` } },
    };
}

const connect = (url: string) => ['--url', url, '--token', TOKEN];

describe('-o json|yaml on the reads', () => {
  it('status: the admin API answer as JSON (-o json and --json) or YAML; anything else is a usage error', async () => {
    await withGateway(api({ 'GET /_mesh/admin/status': { json: STATUS } }), async (url) => {
      const [json, alias, yaml, bad, both] = await Promise.all([
        meshwork(['status', '-o', 'json', ...connect(url)]),
        meshwork(['status', '--json', ...connect(url)]),
        meshwork(['status', '--output', 'yaml', ...connect(url)]),
        meshwork(['status', '-o', 'xml', ...connect(url)]),
        meshwork(['status', '--json', '-o', 'yaml', ...connect(url)]),
      ]);
      expect(json.code, json.stderr).toBe(0);
      expect(JSON.parse(json.stdout)).toEqual(STATUS);
      expect(alias.stdout).toBe(json.stdout);
      expect(yaml.code, yaml.stderr).toBe(0);
      expect(parseYaml(yaml.stdout)).toEqual(STATUS);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toBe(
        'meshwork status: --output must be json or yaml, got "xml"; see meshwork status --help\n',
      );
      expect(both.code).toBe(2);
    });
  });

  it('history: a table of revisions, oldest first, the one in force marked; -o json is the API answer', async () => {
    await withGateway(api({ 'GET /_mesh/admin/history': { json: HISTORY } }), async (url, seen) => {
      const [text, json, yaml] = await Promise.all([
        meshwork(['history', ...connect(url)]),
        meshwork(['history', '-o', 'json', ...connect(url)]),
        meshwork(['history', '-o', 'yaml', ...connect(url)]),
      ]);
      expect(text.code, text.stderr).toBe(0);
      const out = lines(text.stdout);
      expect(out[0]).toBe(`${url}: config revision 2 in force`);
      const header = out.findIndex((l) => l.startsWith('CURRENT'));
      expect(out[header]!.split(/\s+/)).toEqual(['CURRENT', 'REVISION', 'VERSION', 'APPLIED', 'BY', 'MESSAGE']);
      const rows = out.slice(header + 1);
      expect(rows[0]).toMatch(/^\s+0\s+-\s+at deploy\s+-\s+the routes bundled at deploy$/);
      expect(rows[1]).toMatch(/^\s+1\s+7ae87e21a300\s+2026-04-21T12:00:05Z\s+alice$/);
      // The gateway's data is printed, never run: the escape in the message is shown as text.
      expect(rows[2]).toMatch(
        /^\*\s+2\s+0123456789ab\s+2026-04-21T13:30:00Z\s+https:\/\/issuer:bob\s+weights 50\/50\\x1b\[2J$/,
      );
      expect(JSON.parse(json.stdout)).toEqual(HISTORY);
      expect(parseYaml(yaml.stdout)).toEqual(HISTORY);
      expect(seen.every((s) => s.authorization === `Bearer ${TOKEN}`)).toBe(true);
    });
  });

  it('history: says when older revisions are no longer kept', async () => {
    const trimmed = { ...HISTORY, configs: HISTORY.configs.slice(1) };
    await withGateway(api({ 'GET /_mesh/admin/history': { json: trimmed } }), async (url) => {
      const r = await meshwork(['history', ...connect(url)]);
      expect(r.stdout).toContain('(revisions 1 to 1 are no longer kept)');
    });
  });

  it('metrics -o json|yaml: the samples parsed, each with its family type; +Inf stays a string', async () => {
    const text = [
      '# HELP meshwork_requests_total Requests.',
      '# TYPE meshwork_requests_total counter',
      'meshwork_requests_total{route="a\\"b",code="200"} 3',
      '# TYPE meshwork_request_duration_seconds histogram',
      'meshwork_request_duration_seconds_bucket{le="0.005"} 1',
      'meshwork_request_duration_seconds_bucket{le="+Inf"} 3',
      'meshwork_request_duration_seconds_sum 0.25',
      'meshwork_request_duration_seconds_count 3',
      'odd_gauge +Inf 1700000000000',
      '',
    ].join('\n');
    const served = { text, type: 'text/plain; version=0.0.4; charset=utf-8' };
    await withGateway(api({ 'GET /_mesh/metrics': served }), async (url) => {
      const [json, yaml] = await Promise.all([
        meshwork(['metrics', '-o', 'json', ...connect(url)]),
        meshwork(['metrics', '-o', 'yaml', ...connect(url)]),
      ]);
      expect(json.code, json.stderr).toBe(0);
      const samples = JSON.parse(json.stdout);
      expect(samples).toEqual([
        { name: 'meshwork_requests_total', type: 'counter', labels: { route: 'a"b', code: '200' }, value: 3 },
        { name: 'meshwork_request_duration_seconds_bucket', type: 'histogram', labels: { le: '0.005' }, value: 1 },
        { name: 'meshwork_request_duration_seconds_bucket', type: 'histogram', labels: { le: '+Inf' }, value: 3 },
        { name: 'meshwork_request_duration_seconds_sum', type: 'histogram', labels: {}, value: 0.25 },
        { name: 'meshwork_request_duration_seconds_count', type: 'histogram', labels: {}, value: 3 },
        { name: 'odd_gauge', type: 'untyped', labels: {}, value: '+Inf', timestamp: 1700000000000 },
      ]);
      expect(parseYaml(yaml.stdout)).toEqual(samples);
    });
  });

  it('top --once -o json: the telemetry overview as served; without --once, -o is a usage error', async () => {
    const overview = { now: 1, windowSeconds: 60, edges: [], hotKeys: [], totals: { requests: 0 } };
    await withGateway(api({ 'GET /_mesh/admin/telemetry': { json: overview } }), async (url, seen) => {
      const once = await meshwork(['top', '--once', '-o', 'json', ...connect(url)]);
      expect(once.code, once.stderr).toBe(0);
      expect(JSON.parse(once.stdout)).toEqual(overview);
      const live = await meshwork(['top', '-o', 'json', ...connect(url)]);
      expect(live.code).toBe(2);
      expect(live.stderr).toContain('add --once');
      expect(seen).toHaveLength(1);
    });
  });

  it('validate -o json: the bundle summary, or the errors (exit 1)', async () => {
    const ok = await meshwork(['validate', '-o', 'json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({
      valid: true,
      dir: 'routes',
      version: expect.stringMatching(/^[0-9a-f]{12}$/),
      services: ['service-a', 'service-b'],
      routes: expect.arrayContaining([expect.any(String)]),
    });
    const dir = tempDir();
    writeFileSync(join(dir, 'mesh.yaml'), 'routes:\n  - name: r\n    servce: s\n');
    const bad = await meshwork(['validate', '-f', dir, '-o', 'json']);
    expect(bad.code).toBe(1);
    const out = JSON.parse(bad.stdout);
    expect(out.valid).toBe(false);
    expect(out.errors).toContainEqual(
      expect.objectContaining({
        line: 3,
        column: 5,
        field: 'routes[0].servce',
        file: expect.stringContaining('mesh.yaml'),
      }),
    );
  });

  it('token -o json: the token and when it expires', async () => {
    const r = await meshwork(['token', '--sub', 'alice', '--scope', 'read:a', '--ttl', '30m', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      sub: 'alice',
      scope: 'read:a',
      issuer: 'https://dev.meshwork.local',
      audience: 'meshwork',
    });
    expect(Date.parse(out.expiresAt) - Date.now()).toBeGreaterThan(29 * 60_000);
    expect(Date.parse(out.expiresAt) - Date.now()).toBeLessThanOrEqual(30 * 60_000);
    const keys = JSON.parse(readFileSync(join(REPO, '.meshwork/dev-keys.json'), 'utf8'));
    const { payload } = await jwtVerify(out.token, await importJWK(keys.issuer.publicJwk, 'ES256'));
    expect(payload.exp! * 1000).toBe(Date.parse(out.expiresAt));
  });
});

describe('meshwork diff: exit codes as kubectl diff', () => {
  it('0 without differences, 1 with them (the patch printed), both with -o json', async () => {
    let answer = DIFF_NONE;
    await withGateway(
      () => ({ json: answer }),
      async (url, seen) => {
        const none = await meshwork(['diff', ...connect(url)]);
        expect(none.code, none.stderr).toBe(0);
        expect(none.stdout).toContain('no change');
        answer = DIFF_SOME;
        const some = await meshwork(['diff', '-f', 'routes', ...connect(url)]);
        expect(some.code, some.stderr).toBe(1);
        expect(some.stdout).toContain('+  - name: hello');
        expect(some.stdout).toContain('routes added: hello');
        expect(some.stderr).toBe('');
        const json = await meshwork(['diff', 'routes', '-o', 'json', ...connect(url)]);
        expect(json.code).toBe(1);
        expect(JSON.parse(json.stdout)).toEqual(DIFF_SOME);
        expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(Array(3).fill('POST /_mesh/admin/diff'));
        const files = (seen[0]!.body as { files: Array<{ name: string }> }).files.map((f) => f.name);
        expect(files).toContain('mesh.yaml');
      },
    );
  });

  it('3 when it fails: the gateway refuses, cannot be reached, or the local routes are invalid (nothing sent)', async () => {
    await withGateway(
      () => ({
        status: 422,
        json: {
          error: { code: 'invalid_config', message: '1 error(s); nothing was applied' },
          errors: [
            { file: 'mesh.yaml', line: 4, column: 7, field: 'services.s.backends[0].binding', message: 'not bound' },
          ],
        },
      }),
      async (url, seen) => {
        const refused = await meshwork(['diff', ...connect(url)]);
        expect(refused.code).toBe(3);
        expect(refused.stderr).toContain('mesh.yaml:4:7: services.s.backends[0].binding: not bound');
        expect(refused.stderr).toContain('error 422 invalid_config');
        const dir = tempDir();
        writeFileSync(join(dir, 'mesh.yaml'), 'routes:\n  - name: r\n    servce: s\n');
        const before = seen.length;
        const invalid = await meshwork(['diff', '-f', dir, ...connect(url)]);
        expect(invalid.code).toBe(3);
        expect(invalid.stderr).toContain('nothing was sent');
        expect(seen.length).toBe(before);
      },
    );
    const unreachable = await meshwork(['diff', '--url', 'http://127.0.0.1:9', '--token', TOKEN]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain('cannot reach http://127.0.0.1:9');
  });

  it('2 for a usage error; the help documents the exit codes', async () => {
    const [usage, twice, help] = await Promise.all([
      meshwork(['diff', '--bogus']),
      meshwork(['diff', '-f', 'routes', 'other', '--token', TOKEN]),
      meshwork(['diff', '--help']),
    ]);
    expect(usage.code).toBe(2);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('give the routes directory once');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^ {2}0 {2}no differences$/m);
    expect(help.stdout).toMatch(/^ {2}1 {2}differences$/m);
    expect(help.stdout).toMatch(/^ {2}3 {2}failed/m);
  });
});

describe('apply -f and rollback --to-bundled', () => {
  it('apply takes the routes directory as -f, --filename or a positional, and sends its files', async () => {
    const dir = tempDir();
    cpSync(join(REPO, 'routes'), dir, { recursive: true });
    await withGateway(
      () => ({ json: { revision: 3, version: '0123456789ab', unchanged: false } }),
      async (url, seen) => {
        for (const args of [['-f', dir], ['--filename', dir], [dir]]) {
          const r = await meshwork(['apply', ...args, '-m', 'why', ...connect(url)]);
          expect(r.code, r.stderr).toBe(0);
          expect(r.stdout).toBe(`${url}: applied config 0123456789ab as revision 3\n`);
        }
        expect(seen).toHaveLength(3);
        for (const s of seen) {
          expect(`${s.method} ${s.path}`).toBe('POST /_mesh/admin/config');
          expect(s.body).toMatchObject({
            message: 'why',
            files: expect.arrayContaining([expect.objectContaining({ name: 'mesh.yaml' })]),
          });
        }
      },
    );
  });

  it('rollback: --to-bundled is revision 0; a number is a revision, 12 hex digits a version', async () => {
    await withGateway(
      () => ({ json: { revision: 0, version: '8e153b69a26e' } }),
      async (url, seen) => {
        const bundled = await meshwork(['rollback', '--to-bundled', ...connect(url)]);
        expect(bundled.code, bundled.stderr).toBe(0);
        expect(bundled.stdout).toBe(`${url}: config back to revision 0 (8e153b69a26e)\n`);
        await meshwork(['rollback', '3', ...connect(url)]);
        await meshwork(['rollback', '0123456789ab', ...connect(url)]);
        await meshwork(['rollback', ...connect(url)]);
        expect(seen.map((s) => s.body)).toEqual([{ revision: 0 }, { revision: 3 }, { version: '0123456789ab' }, {}]);
        const [both, word] = await Promise.all([
          meshwork(['rollback', '--to-bundled', '2', ...connect(url)]),
          meshwork(['rollback', 'yesterday', ...connect(url)]),
        ]);
        expect(both.code).toBe(2);
        expect(word.code).toBe(2);
        expect(seen).toHaveLength(4);
      },
    );
  });

  it("rollback: the gateway's refusal, in one line (exit 1)", async () => {
    await withGateway(
      () => ({
        status: 409,
        json: { error: { code: 'rollback_refused', message: 'config revision 0 is already in force' } },
      }),
      async (url) => {
        const r = await meshwork(['rollback', '--to-bundled', ...connect(url)]);
        expect(r.code).toBe(1);
        expect(r.stderr).toBe(
          `meshwork rollback: ${url} refused (error 409 rollback_refused: config revision 0 is already in force)\n`,
        );
      },
    );
  });
});
