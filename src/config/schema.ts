/**
 * The routes file schema: the single definition of what `routes/*.yaml` may contain.
 *
 * zod validates it (in Node for the CLI and the build, in workerd for the control plane), and
 * `z.toJSONSchema` exports it for editors. Cross-references between files (a route naming a
 * service, a version that must exist) are checked in `validate.ts`, which knows file origins.
 */
import { z } from 'zod';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const ServiceName = z
  .string()
  .max(63)
  .regex(DNS_LABEL, 'must be a DNS label: lowercase letters, digits and "-", starting and ending alphanumeric')
  .refine((v) => v !== 'gateway', '"gateway" is reserved: it names the edge gateway as a caller')
  .describe('Service name, a DNS label (as a Kubernetes Service name).');

const RouteName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/, 'must be lowercase letters, digits, "-", "." or "_"')
  .describe('Unique route name; appears in errors, logs and metrics.');

const Version = z
  .string()
  .max(63)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/, 'must be letters, digits, ".", "_" or "-"')
  .describe('Version label, e.g. v1.');

const Weight = z
  .number()
  .int('must be a whole number')
  .min(0)
  .max(1_000_000)
  .describe('Relative weight; 0 sends no traffic. Default 1.');

const BindingName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid binding name (letters, digits, "_")')
  .describe('Name of the service binding in the calling worker (wrangler [[services]] binding).');

function hasNoCredentials(u: string): boolean {
  try {
    const url = new URL(u);
    return !url.username && !url.password;
  } catch {
    return true; // not a URL at all: reported by the url check
  }
}

const BackendUrl = z
  .url({ protocol: /^https?$/, error: 'must be an absolute http:// or https:// URL' })
  .refine((u) => !/[?#]/.test(u), 'must not contain a query or fragment')
  .refine(hasNoCredentials, 'must not contain credentials (user:password@): they would be compiled into every bundle')
  .describe('Base URL of a backend outside Workers; the request path is appended to its path.');

export const Backend = z
  .strictObject({
    binding: BindingName.optional(),
    url: BackendUrl.optional(),
    version: Version.optional(),
    weight: Weight.optional(),
  })
  .superRefine((b, ctx) => {
    if ((b.binding === undefined) === (b.url === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'a backend needs exactly one of "binding" or "url"' });
    }
  })
  .describe('One way to reach the service: a worker over a service binding, or a URL.');

export const Service = z
  .strictObject({
    backends: z.array(Backend).min(1, 'a service needs at least one backend'),
  })
  .describe('A service and the backends (versions) that serve it.');

const AbsPath = z
  .string()
  .min(1)
  .max(2048)
  .regex(/^\//, 'must start with "/"')
  .refine((p) => !/[?#\s]/.test(p), 'must not contain "?", "#" or whitespace');

const PathMatch = z
  .strictObject({
    exact: AbsPath.optional().describe('Matches this path only.'),
    prefix: AbsPath.optional().describe('Matches this path and everything below it, by whole segments.'),
    pattern: AbsPath.optional().describe('path-to-regexp pattern, e.g. /users/:id or /files/*rest.'),
  })
  .superRefine((p, ctx) => {
    const n = Number(p.exact !== undefined) + Number(p.prefix !== undefined) + Number(p.pattern !== undefined);
    if (n !== 1) ctx.addIssue({ code: 'custom', message: 'a path match needs exactly one of "exact", "prefix" or "pattern"' });
  });

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
const Method = z.enum(METHODS, { error: `must be one of ${METHODS.join(', ')}` });

const HeaderName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a valid HTTP header name');

const ValueMatch = z.union([z.string(), z.strictObject({ regex: z.string().min(1) })], {
  error: 'must be a string (exact match) or { regex: "..." }',
});

export const Match = z
  .strictObject({
    path: PathMatch.optional(),
    method: z
      .union([Method, z.array(Method).min(1)], { error: `must be an HTTP method or a list of them (${METHODS.join(', ')})` })
      .optional(),
    headers: z.record(HeaderName, ValueMatch).optional().describe('All must match; names are case-insensitive.'),
    query: z.record(z.string().min(1), ValueMatch).optional().describe('All must match (first value of each parameter).'),
  })
  .describe('All conditions in one match must hold; a route matches if any of its matches does.');

const Hostname = z
  .string()
  .max(253)
  .regex(
    /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'must be a lowercase hostname, optionally starting with "*." (no port)',
  );

const BackendRef = z.strictObject({
  service: ServiceName,
  version: Version.optional(),
  weight: Weight.optional(),
});

const Rewrite = z
  .strictObject({
    pathPrefix: AbsPath.optional().describe('Replaces the matched path prefix (prefix matches only).'),
    path: AbsPath.optional().describe('Replaces the whole path.'),
  })
  .superRefine((r, ctx) => {
    if ((r.pathPrefix === undefined) === (r.path === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'a rewrite needs exactly one of "pathPrefix" or "path"' });
    }
  });

export const Route = z
  .strictObject({
    name: RouteName,
    hostnames: z.array(Hostname).min(1).optional().describe('Exact or "*." wildcard hosts; absent matches any host.'),
    matches: z.array(Match).min(1).optional().describe('Absent matches every request (prefix "/").'),
    service: ServiceName.optional().describe('Send matching requests to this service.'),
    version: Version.optional().describe('Only this version of the service (with "service").'),
    backendRefs: z.array(BackendRef).min(1).optional().describe('Weighted split across services/versions.'),
    rewrite: Rewrite.optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.service === undefined) === (r.backendRefs === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'a route needs exactly one of "service" or "backendRefs"' });
    }
    if (r.version !== undefined && r.service === undefined) {
      ctx.addIssue({ code: 'custom', path: ['version'], message: '"version" goes with "service"; in "backendRefs" set it per entry' });
    }
  });

/** One file under routes/. Every section is optional so a config can be split across files. */
export const MeshFile = z
  .strictObject({
    services: z.record(ServiceName, Service).optional(),
    routes: z.array(Route).optional(),
  })
  .describe('meshwork routes file (routes/*.yaml)');

export type BackendSpec = z.output<typeof Backend>;
export type ServiceSpec = z.output<typeof Service>;
export type MatchSpec = z.output<typeof Match>;
export type RouteSpec = z.output<typeof Route>;
export type MeshFileSpec = z.output<typeof MeshFile>;
export type ValueMatchSpec = z.output<typeof ValueMatch>;

/** The whole mesh after all files are merged and cross-checked. */
export interface MeshConfig {
  services: Record<string, ServiceSpec>;
  routes: RouteSpec[];
}
