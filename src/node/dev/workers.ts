/** The workers of the local example mesh, and the mesh member each one is; the gateway first (it gets the port). */
export const MESH_WORKERS = [
  { config: 'wrangler.toml', member: 'gateway' },
  { config: 'examples/service-a/wrangler.toml', member: 'service-a' },
  { config: 'examples/service-b/wrangler.toml', member: 'service-b' },
  { config: 'examples/service-b/wrangler.v2.toml', member: 'service-b' },
] as const;

export const MESH_WORKER_CONFIGS = MESH_WORKERS.map((w) => w.config);

/** Environment that keeps wrangler quiet and offline-friendly. */
export const QUIET_WRANGLER_ENV = {
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
} as const;
