/** The workers that make up the local example mesh; the gateway first (it gets the port). */
export const MESH_WORKER_CONFIGS = [
  'wrangler.toml',
  'examples/service-a/wrangler.toml',
  'examples/service-b/wrangler.toml',
  'examples/service-b/wrangler.v2.toml',
] as const;

/** Environment that keeps wrangler quiet and offline-friendly. */
export const QUIET_WRANGLER_ENV = {
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
} as const;
