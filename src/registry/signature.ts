/**
 * Snapshots are signed by the registry with the gateway's mesh key, so a worker that can write to
 * the shared KV namespace (every service can) cannot make gateways or services route by a config
 * of its own: they accept a snapshot only with a valid signature by a key of member "gateway"
 * (the public keys come from the deployment, MESH_PUBLIC_KEYS, never from KV or a snapshot).
 *
 * The signature is a small JWS kept in the KV value's metadata; it binds the snapshot's digest
 * and its place in the registry's history (epoch, revision, when it was published), which is
 * what lets a reader refuse an older snapshot put back under the marker.
 */
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { sha256Hex } from '../core/hash.ts';
import { KeysUnavailable, type KeyIo, type KeyResolver } from '../core/keys.ts';
import { IDENTITY_ALGORITHMS, memberOfKid, type MeshSigner } from '../identity/keys.ts';
import type { Snapshot } from './types.ts';

const TYP = 'mesh-snapshot+jwt';
const ISSUER = 'meshwork-registry';

/** KV metadata of a published snapshot. */
export interface SnapshotMetadata {
  sig: string;
}

export interface SnapshotClaims {
  epoch: string;
  revision: number;
  publishedAt: number;
  sha256: string;
}

export async function signSnapshot(body: string, snap: Snapshot, signer: MeshSigner): Promise<SnapshotMetadata> {
  const claims: SnapshotClaims = {
    epoch: snap.epoch,
    revision: snap.revision,
    publishedAt: snap.publishedAt,
    sha256: await sha256Hex(body),
  };
  const sig = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: TYP })
    .setIssuer(ISSUER)
    .setIssuedAt()
    .sign(signer.key);
  return { sig };
}

export type SnapshotCheck = { ok: true; snapshot: Snapshot } | { ok: false; reason: string };

/** The snapshot in `body` if `metadata` signs exactly it; otherwise why not. */
export async function verifySnapshot(
  body: string,
  metadata: unknown,
  publicKeys: KeyResolver,
  io: KeyIo,
): Promise<SnapshotCheck> {
  const sig = (metadata as Partial<SnapshotMetadata> | null)?.sig;
  if (typeof sig !== 'string') return { ok: false, reason: 'not signed' };
  let claims: SnapshotClaims;
  try {
    const { kid, crit } = decodeProtectedHeader(sig);
    if (crit !== undefined || memberOfKid(kid) !== 'gateway') return { ok: false, reason: 'not signed by the gateway' };
    const { payload } = await jwtVerify(sig, (h) => publicKeys(h, io), {
      issuer: ISSUER,
      algorithms: [...IDENTITY_ALGORITHMS],
      typ: TYP,
    });
    claims = payload as unknown as SnapshotClaims;
  } catch (e) {
    if (e instanceof KeysUnavailable) throw e;
    return { ok: false, reason: 'signature invalid' };
  }
  if (claims.sha256 !== (await sha256Hex(body))) return { ok: false, reason: 'signature is for another snapshot' };
  let snapshot: Snapshot;
  try {
    snapshot = JSON.parse(body) as Snapshot;
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (
    snapshot.epoch !== claims.epoch ||
    snapshot.revision !== claims.revision ||
    snapshot.publishedAt !== claims.publishedAt
  )
    return { ok: false, reason: 'signature is for another snapshot' };
  return { ok: true, snapshot };
}
