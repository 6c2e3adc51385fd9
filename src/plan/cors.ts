/** A route's CORS settings (routes[].cors), compiled once: what the gateway's cors stage checks. */
import type { CorsSpec } from '../config/schema.ts';

/** A route's CORS settings, joined once at config load. */
export interface CorsPlan {
  readonly anyOrigin: boolean;
  readonly origins: ReadonlySet<string>;
  /** "https://*.example.com" as [scheme://, .example.com]. */
  readonly wildcards: ReadonlyArray<readonly [string, string]>;
  readonly methods: string;
  readonly headers: string;
  readonly expose: string;
  readonly maxAge: string;
  readonly credentials: boolean;
}

export function compileCors(spec: CorsSpec): CorsPlan {
  const wildcards = spec.allowOrigins
    .filter((o) => o.includes('://*.'))
    .map((o) => {
      const [scheme, host] = o.split('://*');
      return [`${scheme}://`, host!] as const;
    });
  return {
    anyOrigin: spec.allowOrigins.includes('*'),
    origins: new Set(spec.allowOrigins.filter((o) => o !== '*' && !o.includes('://*.'))),
    wildcards,
    methods: spec.allowMethods.join(', '),
    headers: spec.allowHeaders.map((h) => h.toLowerCase()).join(', '),
    expose: spec.exposeHeaders.join(', '),
    maxAge: String(Math.round(spec.maxAge)),
    credentials: spec.allowCredentials,
  };
}

export function corsAllows(cors: CorsPlan, origin: string): boolean {
  if (cors.anyOrigin || cors.origins.has(origin)) return true;
  return cors.wildcards.some(
    ([scheme, suffix]) =>
      origin.startsWith(scheme) && origin.endsWith(suffix) && origin.length > scheme.length + suffix.length,
  );
}

/** The fields every answer to an allowed origin carries. */
export function corsOriginFields(cors: CorsPlan, origin: string): Array<[string, string]> {
  const out: Array<[string, string]> = [
    ['access-control-allow-origin', cors.anyOrigin && !cors.credentials ? '*' : origin],
  ];
  if (cors.credentials) out.push(['access-control-allow-credentials', 'true']);
  if (cors.expose) out.push(['access-control-expose-headers', cors.expose]);
  return out;
}
