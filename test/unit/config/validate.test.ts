import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleRoutesDir, readRoutesDir } from '../../../src/node/config/load-dir.ts';
import { formatIssue, validateSources, type ConfigIssue } from '../../../src/config/validate.ts';

const SERVICES = `
services:
  svc:
    backends:
      - binding: SVC_V1
        version: v1
        weight: 3
      - binding: SVC_V2
        version: v2
        weight: 1
`;

function errorsOf(text: string, name = 'routes/mesh.yaml'): ConfigIssue[] {
  const r = validateSources([{ name, text }]);
  if (r.ok) throw new Error('expected validation to fail');
  return r.errors;
}

describe('routes file validation', () => {
  it('accepts the shipped example config', () => {
    const r = validateSources(readRoutesDir('routes'));
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(Object.keys(r.config.services)).toEqual(['service-a', 'service-b']);
      expect(r.config.services['service-b']!.backends.map((b) => b.weight)).toEqual([90, 10]);
    }
  });

  it('names file, line, column and field for a typo, and suggests the right name', () => {
    const text = `${SERVICES}
routes:
  - name: r1
    matches:
      - pth: { prefix: /a }
    service: svc
`;
    const [e, ...rest] = errorsOf(text);
    expect(rest).toEqual([]);
    expect(e).toMatchObject({ file: 'routes/mesh.yaml', line: 15, column: 9, field: 'routes[0].matches[0].pth' });
    expect(e!.message).toBe('unknown field "pth" (did you mean "path"?)');
    expect(formatIssue(e!)).toBe(
      'routes/mesh.yaml:15:9: routes[0].matches[0].pth: unknown field "pth" (did you mean "path"?)',
    );
  });

  it('reports a wrong type at the value', () => {
    const e = errorsOf(`${SERVICES}
routes:
  - name: r1
    service: svc
    matches:
      - method: FETCH
`);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ line: 16, column: 17, field: 'routes[0].matches[0].method' });
    expect(e[0]!.message).toMatch(/^must be one of GET, HEAD, POST/);
  });

  it('reports a missing required field at its parent', () => {
    const e = errorsOf(`${SERVICES}
routes:
  - service: svc
`);
    expect(e[0]).toMatchObject({ line: 13, field: 'routes[0].name', message: 'is required' });
  });

  it('rejects references to unknown services and versions, with a hint', () => {
    const e = errorsOf(`${SERVICES}
routes:
  - name: r1
    service: scv
  - name: r2
    service: svc
    version: v3
`);
    expect(e.map((i) => [i.line, i.field, i.message])).toEqual([
      [14, 'routes[0].service', 'unknown service "scv" (did you mean "svc"?)'],
      [17, 'routes[1].version', 'service "svc" has no version "v3" (has: v1, v2)'],
    ]);
  });

  it('reports YAML syntax errors with their position', () => {
    const e = errorsOf('routes:\n  - name: r1\n   service: [unclosed\n');
    expect(e[0]!.file).toBe('routes/mesh.yaml');
    expect(e[0]!.line).toBeGreaterThanOrEqual(2);
    expect(e[0]!.message).toMatch(/^YAML: /);
  });

  it('rejects duplicate YAML keys rather than silently keeping one', () => {
    const e = errorsOf(`${SERVICES}
routes:
  - name: r1
    service: svc
    service: svc
`);
    expect(e[0]!.message).toMatch(/YAML: .*unique/i);
  });

  it.each([
    [
      'a backend with both binding and url',
      'services:\n  s:\n    backends:\n      - { binding: A, url: "http://x" }\n',
      'exactly one of "binding" or "url"',
    ],
    [
      'a backend with neither',
      'services:\n  s:\n    backends:\n      - { version: v1 }\n',
      'exactly one of "binding" or "url"',
    ],
    ['a negative weight', 'services:\n  s:\n    backends:\n      - { binding: A, weight: -1 }\n', '>=0'],
    ['a fractional weight', 'services:\n  s:\n    backends:\n      - { binding: A, weight: 1.5 }\n', 'whole number'],
    ['a non-http URL', 'services:\n  s:\n    backends:\n      - { url: "ftp://x" }\n', 'http:// or https://'],
    ['an upper-case service name', 'services:\n  Svc:\n    backends:\n      - { binding: A }\n', 'DNS label'],
    [
      'the reserved service name "gateway"',
      'services:\n  gateway:\n    backends:\n      - { binding: A }\n',
      'reserved',
    ],
    ['a service without backends', 'services:\n  s:\n    backends: []\n', 'at least one backend'],
  ])('rejects %s', (_what, text, message) => {
    const e = errorsOf(text);
    expect(e.map((i) => i.message).join('\n')).toContain(message);
    expect(e[0]!.line).toBeGreaterThan(1);
  });

  it.each([
    ['a path without a leading slash', '      - path: { prefix: api }', 'must start with "/"'],
    [
      'two path kinds at once',
      '      - path: { prefix: /a, exact: /a }',
      'exactly one of "exact", "prefix" or "pattern"',
    ],
    ['an invalid pattern', '      - path: { pattern: "/a/:" }', 'invalid pattern'],
    ['an invalid header regex', '      - headers: { x-a: { regex: "(" } }', 'invalid regular expression'],
    ['a reserved /_mesh path', '      - path: { prefix: /_mesh/admin }', 'reserved'],
  ])('rejects %s', (_what, matchLine, message) => {
    const e = errorsOf(`${SERVICES}
routes:
  - name: r1
    service: svc
    matches:
${matchLine}
`);
    expect(e.map((i) => i.message).join('\n')).toContain(message);
    expect(e[0]!.line).toBe(16);
  });

  it('points at the misspelt key inside a { regex } value, without follow-on noise', () => {
    const e = errorsOf(`${SERVICES}
routes:
  - name: r1
    service: svc
    matches:
      - headers: { x-a: { regx: "^a" } }
`);
    expect(e.map((i) => [i.line, i.column, i.field, i.message])).toEqual([
      [16, 27, 'routes[0].matches[0].headers.x-a.regx', 'unknown field "regx" (did you mean "regex"?)'],
    ]);
  });

  it('refuses admin issuers whose user audiences include the admin audience', () => {
    const issuer = (audiences: string) => `
auth:
  issuers:
    idp:
      issuer: https://login.example.com
      audiences: [${audiences}]
      algorithms: [RS256]
      jwksUri: https://login.example.com/jwks.json
admin:
  issuers: [idp]
`;
    const e = errorsOf(issuer('api, meshwork-admin'));
    expect(e.map((i) => [i.field, i.line])).toEqual([['admin.issuers[0]', 10]]);
    expect(e[0]!.message).toContain('accepts the admin audience "meshwork-admin" for user tokens');
    expect(validateSources([{ name: 'routes/mesh.yaml', text: issuer('api') }]).ok).toBe(true);
    // A custom admin audience is what is compared.
    expect(
      errorsOf(`${issuer('api')}  audience: api
`)[0]!.message,
    ).toContain('admin audience "api"');
  });

  it('reports a misspelt backend key once, not also as a missing binding', () => {
    const e = errorsOf('services:\n  s:\n    backends:\n      - bindng: S\n');
    expect(e.map((i) => i.message)).toEqual(['unknown field "bindng" (did you mean "binding"?)']);
  });

  it('rejects credentials in a URL backend', () => {
    const e = errorsOf('services:\n  s:\n    backends:\n      - url: "https://user:secret@billing.internal"\n');
    expect(e[0]!.message).toContain('must not contain credentials');
  });

  it('refuses to write claims onto credential or mesh identity headers', () => {
    const e = errorsOf(
      `${SERVICES}\nauth:\n  claimHeaders: { sub: x-mesh-identity, email: Authorization, tenant: x-tenant }\n`,
    );
    expect(e.map((i) => i.field)).toEqual(['auth.claimHeaders.sub', 'auth.claimHeaders.email']);
    expect(e[0]!.message).toContain('is reserved');
  });

  it('refuses HS algorithms next to public keys, and non-HS ones with a shared secret', () => {
    const base = `${SERVICES}\nauth:\n  issuers:\n    idp:\n      issuer: https://idp\n      audiences: [api]\n`;
    const mixed = errorsOf(`${base}      algorithms: [RS256, HS256]\n      jwksUri: https://idp/jwks\n`);
    expect(mixed[0]).toMatchObject({
      field: 'auth.issuers.idp.algorithms',
      message: expect.stringContaining('algorithm confusion'),
    });
    const secret = errorsOf(`${base}      algorithms: [HS256, RS256]\n      secret: { env: S }\n`);
    expect(secret[0]!.message).toContain('HS256/HS384/HS512 only');
    const none = errorsOf(`${base}      algorithms: [none]\n      jwksUri: https://idp/jwks\n`);
    expect(none[0]!.message).toContain('"none" is never accepted');
  });

  it('checks route auth against the configured issuers', () => {
    const e = errorsOf(`${SERVICES}
auth:
  issuers:
    corp: { issuer: https://corp, audiences: [api], algorithms: [ES256], jwksUri: "https://corp/jwks" }
routes:
  - name: r1
    service: svc
    auth: { issuers: [crop] }
  - name: r2
    service: svc
    auth: { mode: optional, scopes: [a] }
`);
    expect(e.map((i) => [i.field, i.message])).toEqual([
      ['routes[1].auth.mode', '"scopes" and "claims" need mode: required'],
    ]);
    const e2 = errorsOf(`${SERVICES}
auth:
  issuers:
    corp: { issuer: https://corp, audiences: [api], algorithms: [ES256], jwksUri: "https://corp/jwks" }
routes:
  - name: r1
    service: svc
    auth: { issuers: [crop] }
`);
    expect(e2.map((i) => [i.field, i.message])).toEqual([
      ['routes[0].auth.issuers[0]', 'unknown issuer "crop" (did you mean "corp"?)'],
    ]);
  });

  it('checks allowCallers names', () => {
    const e = errorsOf(
      `services:\n  svc:\n    backends: [{ binding: S }]\n    policy: { allowCallers: [gateway, svx] }\n`,
    );
    expect(e[0]).toMatchObject({
      field: 'services.svc.policy.allowCallers[1]',
      message: 'unknown caller "svx": not "gateway" nor a service (did you mean "svc"?)',
    });
  });

  it('checks rate-limit policies and where they are used', () => {
    const e = errorsOf(`${SERVICES}
rateLimits:
  per-user: { limit: 5, period: 10s, key: [claim:sub] }
  per-caller: { limit: 5, period: 1s, key: [caller] }
  too-costly: { limit: 5, period: 1s, cost: 6 }
  leasy: { limit: 5, period: 1s, lease: { size: 2 } }
  bad-key: { limit: 5, period: 1s, key: [cookie:x] }
routes:
  - name: r1
    service: svc
    rateLimits: [per-usr, per-caller]
`);
    expect(e.map((i) => [i.field, i.message])).toEqual([
      ['rateLimits.too-costly.cost', 'cost 6 exceeds the burst (5): no request could ever pass'],
      ['rateLimits.leasy.lease', '"lease" settings need mode: lease'],
      [
        'rateLimits.bad-key.key[0]',
        'must be ip, route, caller, claim:<name> or header:<name>, or alternatives joined by "??" (claim:sub ?? ip)',
      ],
    ]);
    const e2 = errorsOf(`${SERVICES}
rateLimits:
  per-user: { limit: 5, period: 10s, key: [claim:sub] }
  per-caller: { limit: 5, period: 1s, key: [caller] }
routes:
  - name: r1
    service: svc
    rateLimits: [per-usr, per-caller]
`);
    expect(e2.map((i) => [i.field, i.message])).toEqual([
      ['routes[0].rateLimits[0]', 'unknown rate limit "per-usr" (did you mean "per-user"?)'],
      [
        'routes[0].rateLimits[1]',
        'rate limit "per-caller" uses the caller ("caller" key or "callers"), which only exists for calls between services (policy.rateLimits)',
      ],
    ]);
  });

  it('refuses allowAnonymous together with allowCallers', () => {
    const e = errorsOf(
      `services:\n  svc:\n    backends: [{ binding: S }]\n    policy: { allowCallers: [gateway], allowAnonymous: true }\n`,
    );
    expect(e[0]).toMatchObject({
      field: 'services.svc.policy.allowAnonymous',
      message: expect.stringContaining('cannot go with allowCallers'),
    });
  });

  it('bounds the identity token lifetime', () => {
    expect(errorsOf(`${SERVICES}\nidentity: { tokenTtl: 5s }\n`)[0]!.message).toContain('at least 30s');
  });

  it('rejects a route with none, or more than one, of service, backendRefs and redirect', () => {
    expect(errorsOf(`${SERVICES}\nroutes:\n  - name: r1\n`)[0]!.message).toContain(
      'exactly one of "service", "backendRefs" or "redirect"',
    );
    expect(
      errorsOf(`${SERVICES}\nroutes:\n  - name: r1\n    service: svc\n    redirect: { hostname: example.org }\n`)[0]!
        .message,
    ).toContain('exactly one of "service", "backendRefs" or "redirect"');
    expect(
      errorsOf(`${SERVICES}\nroutes:\n  - name: r1\n    service: svc\n    backendRefs: [{ service: svc }]\n`)[0]!
        .message,
    ).toContain('exactly one of "service", "backendRefs" or "redirect"');
  });

  it('rejects a prefix rewrite on a route that does not match by prefix', () => {
    const e = errorsOf(`${SERVICES}
routes:
  - name: r1
    service: svc
    matches:
      - path: { exact: /a }
    rewrite: { pathPrefix: /b }
`);
    expect(e[0]).toMatchObject({ field: 'routes[0].rewrite.pathPrefix' });
  });

  it('rejects a wildcard that is not a leading "*." label, and hostnames with ports', () => {
    const e1 = errorsOf(`${SERVICES}\nroutes:\n  - name: r1\n    service: svc\n    hostnames: ["api.*.com"]\n`);
    const e2 = errorsOf(
      `${SERVICES}\nroutes:\n  - name: r1\n    service: svc\n    hostnames: ["api.example.com:8080"]\n`,
    );
    expect(e1[0]!.field).toBe('routes[0].hostnames[0]');
    expect(e2[0]!.field).toBe('routes[0].hostnames[0]');
  });

  it('merges several files in name order and rejects names defined twice, naming both places', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-routes-'));
    writeFileSync(
      join(dir, '20-routes.yaml'),
      'routes:\n  - name: r1\n    service: svc\n  - name: r1\n    service: svc\n',
    );
    writeFileSync(join(dir, '10-services.yml'), SERVICES);
    writeFileSync(join(dir, 'notes.txt'), 'not a routes file');
    const sources = readRoutesDir('.', dir);
    expect(sources.map((s) => s.name)).toEqual(['10-services.yml', '20-routes.yaml']);
    const r = validateSources(sources);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]).toMatchObject({ file: '20-routes.yaml', line: 4, field: 'routes[1].name' });
      expect(r.errors[0]!.message).toBe('route "r1" is already defined at 20-routes.yaml:2:11');
    }
  });

  it('refuses an empty routes directory and a missing one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-empty-'));
    const r = await bundleRoutesDir(dir);
    expect(r.ok).toBe(false);
    await expect(bundleRoutesDir(join(dir, 'missing'))).rejects.toThrow(/routes directory not found/);
  });

  it('gives the same version for the same config and a different one after a change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-version-'));
    writeFileSync(join(dir, 'a.yaml'), `${SERVICES}\nroutes:\n  - name: r1\n    service: svc\n`);
    const a = await bundleRoutesDir(dir);
    const b = await bundleRoutesDir(dir);
    writeFileSync(join(dir, 'a.yaml'), `${SERVICES}\nroutes:\n  - name: r2\n    service: svc\n`);
    const c = await bundleRoutesDir(dir);
    expect(a.ok && b.ok && c.ok).toBe(true);
    if (a.ok && b.ok && c.ok) {
      expect(a.bundle.version).toMatch(/^[0-9a-f]{12}$/);
      expect(b.bundle.version).toBe(a.bundle.version);
      expect(c.bundle.version).not.toBe(a.bundle.version);
    }
  });
});

describe('sections across files', () => {
  const files = (...texts: string[]) => texts.map((text, i) => ({ name: `${i + 1}0-part.yaml`, text }));
  const ISSUER = (name: string, iss: string) =>
    `auth:\n  issuers:\n    ${name}: { issuer: "${iss}", audiences: [a], algorithms: [ES256], jwks: { env: K } }\n`;

  it('issuers merge by name; a field one file sets is not "set" by another file leaving it to its default', () => {
    const r = validateSources(
      files(
        `${ISSUER('one', 'https://one.test')}`,
        `${ISSUER('two', 'https://two.test')}  claimHeaders: { sub: x-user }\n`,
        `${SERVICES}routes: []\n`,
      ),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Object.keys(r.config.auth.issuers)).toEqual(['one', 'two']);
    expect(r.config.auth.claimHeaders).toEqual({ sub: 'x-user' });
    // Every other field has its default, written once in the schema.
    expect(r.config.auth.token).toEqual({ header: 'authorization' });
    expect(r.config.registry).toEqual({ heartbeatTtl: 90, probeInterval: 15, refreshInterval: 5 });
    expect(r.config.services.svc!.backends[0]!.weight).toBe(3);
  });

  it('a field or section given twice names the first place it was set', () => {
    const r = validateSources(
      files(
        'auth:\n  claimHeaders: { sub: x-a }\nregistry: { probeInterval: 5s }\n',
        'auth:\n  claimHeaders: { sub: x-b }\nregistry: {}\n',
      ),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => [e.field, e.message])).toEqual([
      ['auth.claimHeaders', 'auth.claimHeaders is already set in 10-part.yaml:2:3'],
      ['registry', 'registry is already set in 10-part.yaml:3:1'],
    ]);
  });

  it('a validated config parses to itself again (what a gateway does with a snapshot from another version)', async () => {
    const { Config } = await import('../../../src/config/schema.ts');
    const r = validateSources(readRoutesDir('routes'));
    expect(r.ok).toBe(true);
    if (r.ok) expect(Config.parse(JSON.parse(JSON.stringify(r.config)))).toEqual(r.config);
  });
});

describe('endpoints', () => {
  it('a version may have several endpoints; the same endpoint twice is refused with a hint', () => {
    const ok = validateSources([
      {
        name: 'm.yaml',
        text: `services:
  svc:
    backends:
      - { binding: SVC_A, version: v1 }
      - { binding: SVC_B, version: v1 }
      - { url: "https://x.example/a", version: v2, name: x-a }
      - { url: "https://x.example/b", version: v2, name: x-b }
`,
      },
    ]);
    expect(ok.ok).toBe(true);
    const errors = errorsOf(`services:
  svc:
    backends:
      - { url: "https://x.example/a", version: v2 }
      - { url: "https://x.example/b", version: v2 }
`);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ field: 'services.svc.backends[1]', line: 5 });
    expect(errors[0]!.message).toBe(
      'backends[0] and backends[1] are the same endpoint "x.example" of version "v2"; give one a distinct "name"',
    );
    expect(errorsOf('services:\n  svc:\n    backends:\n      - { binding: A, name: "bad name" }\n')[0]).toMatchObject({
      field: 'services.svc.backends[0].name',
    });
  });
});
