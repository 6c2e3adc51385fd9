/** Bundles: a validated config with its content version, as the build ships it and the registry applies it. */
import { CONFIG_FORMAT, Config, type MeshBundle, type MeshConfig } from './schema.ts';

/** Content hash of a validated config: the same routes always give the same version. */
export async function configVersion(config: MeshConfig): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(config));
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  let hex = '';
  for (const b of digest.subarray(0, 6)) hex += b.toString(16).padStart(2, '0');
  return hex;
}

export async function makeBundle(config: MeshConfig, sources?: MeshBundle['sources']): Promise<MeshBundle> {
  return { version: await configVersion(config), format: CONFIG_FORMAT, config, ...(sources ? { sources } : {}) };
}

/**
 * A bundle in the current form. One built by an earlier meshwork (a snapshot or history entry
 * from before an upgrade, or a hand-written one) is parsed through the schema again, which fills
 * in every default; its version is kept, so it still names the same config. Throws if the
 * config is not valid at all.
 */
export function normalizeBundle(bundle: MeshBundle): MeshBundle {
  if (bundle.format === CONFIG_FORMAT) return bundle;
  return { ...bundle, format: CONFIG_FORMAT, config: Config.parse(bundle.config) };
}
