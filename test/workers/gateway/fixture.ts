import { env } from 'cloudflare:test';
import { createGateway } from '../../../src/gateway/app.ts';
import { call, planFrom, type Echo } from '../helpers.ts';

export const YAML = `
# The test's URL backend runs on this machine.
network:
  allowLoopbackBackends: true
services:
  echo:
    backends:
      - { binding: ECHO, version: v1, weight: 90 }
      - { binding: ECHO_V2, version: v2, weight: 10 }
  broken:
    backends:
      - binding: BROKEN
  unbound:
    backends:
      - binding: NOT_BOUND
  external:
    backends:
      - url: "${env.UPSTREAM_URL}/base"
routes:
  - name: echo
    matches: [{ path: { prefix: /echo } }]
    service: echo
    version: v1
  - name: split
    matches: [{ path: { prefix: /split } }]
    service: echo
  - name: dark
    matches: [{ path: { prefix: /dark } }]
    backendRefs: [{ service: echo, weight: 0 }]
  - name: rewritten
    matches: [{ path: { prefix: /old } }]
    service: echo
    version: v1
    rewrite: { pathPrefix: /new }
  - name: broken
    matches: [{ path: { prefix: /broken } }]
    service: broken
  - name: unbound
    matches: [{ path: { prefix: /unbound } }]
    service: unbound
  - name: external
    matches: [{ path: { prefix: /ext } }]
    service: external
  - name: admin-only
    matches: [{ path: { exact: /svc/admin } }]
    backendRefs: [{ service: echo, weight: 0 }]
  - name: svc
    matches: [{ path: { prefix: /svc } }]
    service: echo
    version: v1
  - name: by-host
    hostnames: ["*.tenant.example.com"]
    matches: [{ path: { prefix: /echo } }]
    service: echo
    version: v2
  - name: by-header-and-query
    matches: [{ path: { prefix: /echo }, headers: { x-canary: "yes" }, query: { beta: "1" } }]
    service: echo
    version: v2
`;

export const gateway = createGateway({ plan: planFrom(YAML) });

export const BASE = 'https://gw.example.com';

export async function echo(path: string, init?: RequestInit): Promise<{ res: Response; seen: Echo }> {
  const res = await call(gateway, `${BASE}${path}`, init);
  return { res, seen: (await res.json()) as Echo };
}
