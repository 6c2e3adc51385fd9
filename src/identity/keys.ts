/**
 * Mesh member keys. Every member (the gateway and each service) signs with its own private key
 * (a wrangler secret, default MESH_SIGNING_KEY) and trusts the public keys of all members
 * (default env MESH_PUBLIC_KEYS, or inline in routes/). A key's kid starts with its member's
 * name and a dot ("service-a.2026-11"): a token is accepted only if signed by a key of the member
 * it claims to come from, so a compromised service can speak only for itself.
 */
import { importJWK, type JWK } from 'jose';
import { textOf, type MeshBindings } from '../core/bindings.ts';
import { jwksResolver, KeysUnavailable, type KeyResolver } from '../core/keys.ts';
import type { IdentitySpec } from '../config/schema.ts';

export const IDENTITY_ALGORITHMS = ['EdDSA', 'ES256'] as const;
export type IdentityAlgorithm = (typeof IDENTITY_ALGORITHMS)[number];

export interface MeshSigner {
  member: string;
  kid: string;
  alg: IdentityAlgorithm;
  key: CryptoKey;
}

export function memberOfKid(kid: unknown): string | undefined {
  if (typeof kid !== 'string') return undefined;
  const dot = kid.indexOf('.');
  return dot > 0 ? kid.slice(0, dot) : undefined;
}

export function algorithmFor(jwk: JWK): IdentityAlgorithm {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  throw new KeysUnavailable('mesh keys must be Ed25519 (OKP) or P-256 (EC)');
}

export class MeshKeys {
  readonly #signingEnv: string;
  readonly #publicKeys: KeyResolver;
  #signer: { text: string; signer: Promise<MeshSigner> } | undefined;

  constructor(spec: Pick<IdentitySpec, 'signingKey' | 'publicKeys'>) {
    this.#signingEnv = spec.signingKey.env;
    this.#publicKeys = jwksResolver(spec.publicKeys);
  }

  get publicKeys(): KeyResolver {
    return this.#publicKeys;
  }

  /** This worker's signing key, imported once per isolate (and again only if the secret changes). */
  signer(env: MeshBindings): Promise<MeshSigner> {
    const text = textOf(env, this.#signingEnv);
    if (text === undefined) {
      return Promise.reject(new KeysUnavailable(`env ${this.#signingEnv} (this worker's mesh signing key) is not set`));
    }
    if (this.#signer?.text !== text) {
      const signer = (async (): Promise<MeshSigner> => {
        let jwk: JWK;
        try {
          jwk = JSON.parse(text) as JWK;
        } catch {
          throw new KeysUnavailable(`env ${this.#signingEnv} is not a JSON Web Key`);
        }
        const member = memberOfKid(jwk.kid);
        if (!jwk.d || !member)
          throw new KeysUnavailable(`env ${this.#signingEnv} must be a private JWK whose kid is "<member>.<id>"`);
        const alg = algorithmFor(jwk);
        return { member, kid: jwk.kid!, alg, key: (await importJWK(jwk, alg)) as CryptoKey };
      })();
      // A failed import is not cached: fixing the secret must not need a restart.
      signer.catch(() => {
        if (this.#signer?.signer === signer) this.#signer = undefined;
      });
      this.#signer = { text, signer };
    }
    return this.#signer.signer;
  }
}
