/**
 * Key material for meshwork: mesh member keys (`meshwork keys generate`) and the local
 * development keys that `npm run dev` and `meshwork token` share. Node only.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { updateDevVars } from '../dev/dev-vars.ts';

export interface KeyPair {
  privateJwk: JWK;
  publicJwk: JWK;
}

export const DEV_ISSUER = 'https://dev.meshwork.local';
export const DEV_AUDIENCE = 'meshwork';

export interface DevKeys {
  issuer: KeyPair & { issuer: string; audience: string };
  members: Record<string, KeyPair>;
  /** The local gateway's MESH_ADMIN_TOKEN (control-plane API). */
  adminToken?: string;
}

export async function generatePair(alg: 'EdDSA' | 'ES256', kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { privateJwk: { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' }, publicJwk };
}

/** A mesh member's signing key: kid "<member>.<date>" binds the key to the member. */
export function memberPair(member: string): Promise<KeyPair> {
  return generatePair('EdDSA', `${member}.${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`);
}

function writeIfChanged(path: string, text: string): void {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, { mode: 0o600 });
}

export function devKeysPath(root: string): string {
  return join(root, '.meshwork', 'dev-keys.json');
}

/**
 * Creates (first run) or completes the local development keys, kept out of git under
 * .meshwork/, and writes each worker's .dev.vars next to its wrangler config with its own
 * signing key, every member's public key, and the dev issuer's public keys.
 */
export async function ensureDevKeys(
  root: string,
  workers: ReadonlyArray<{ config: string; member: string }>,
): Promise<DevKeys> {
  const path = devKeysPath(root);
  if (!existsSync(path)) {
    const fresh: DevKeys = {
      issuer: { ...(await generatePair('ES256', 'dev-1')), issuer: DEV_ISSUER, audience: DEV_AUDIENCE },
      members: {},
      adminToken: randomBytes(24).toString('base64url'),
    };
    for (const { member } of workers) fresh.members[member] ??= await memberPair(member);
    mkdirSync(dirname(path), { recursive: true });
    // Exclusive create: if another process (dev, a test, `meshwork token`) made the keys first,
    // theirs win and everyone uses the same ones.
    try {
      writeFileSync(path, `${JSON.stringify(fresh, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const keys = JSON.parse(readFileSync(path, 'utf8')) as DevKeys;
  let added = false;
  if (!keys.adminToken) {
    keys.adminToken = randomBytes(24).toString('base64url');
    added = true;
  }
  for (const { member } of workers) {
    if (!keys.members[member]) {
      keys.members[member] = await memberPair(member);
      added = true;
    }
  }
  if (added) writeIfChanged(path, `${JSON.stringify(keys, null, 2)}\n`);

  const publicKeys = JSON.stringify({ keys: Object.values(keys.members).map((m) => m.publicJwk) });
  const devJwks = JSON.stringify({ keys: [keys.issuer.publicJwk] });
  for (const { config, member } of workers) {
    // Only meshwork's own variables are set; the user's other lines in .dev.vars stay.
    updateDevVars(join(root, dirname(config), '.dev.vars'), {
      MESH_SIGNING_KEY: JSON.stringify(keys.members[member]!.privateJwk),
      MESH_PUBLIC_KEYS: publicKeys,
      MESH_DEV_JWKS: devJwks,
      // Local development: the gateway knows it (client addresses, loopback URL backends).
      ...(member === 'gateway' ? { MESH_ADMIN_TOKEN: keys.adminToken, MESHWORK_DEV: '1' } : {}),
    });
  }
  return keys;
}
