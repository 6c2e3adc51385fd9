import type { MeshConfig } from './schema.ts';

/** Content hash of a validated config: the same routes always give the same version. */
export async function configVersion(config: MeshConfig): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(config));
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  let hex = '';
  for (const b of digest.subarray(0, 6)) hex += b.toString(16).padStart(2, '0');
  return hex;
}
