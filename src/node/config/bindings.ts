/**
 * Cross-checks routes against a worker's wrangler config: every service binding that the
 * gateway's routes can send traffic to must be declared, or each such request would get a 503
 * at run time. Node only (reads the wrangler config with wrangler's own reader).
 */
import type { MeshConfig } from '../../config/schema.ts';

export async function missingGatewayBindings(config: MeshConfig, wranglerConfigPath: string): Promise<string[]> {
  const { unstable_readConfig } = await import('wrangler');
  const declared = new Set(
    (unstable_readConfig({ config: wranglerConfigPath }).services ?? []).map((s: { binding: string }) => s.binding),
  );
  const routed = new Set(
    config.routes.flatMap((r) => (r.backendRefs ? r.backendRefs.map((b) => b.service) : [r.service!])),
  );
  const missing: string[] = [];
  for (const name of routed) {
    for (const b of config.services[name]?.backends ?? []) {
      if (b.binding && !declared.has(b.binding))
        missing.push(
          `service "${name}" backend binding ${b.binding} is not declared in ${wranglerConfigPath} ([[services]] binding = "${b.binding}")`,
        );
    }
  }
  return missing;
}
