// What test/support/global-setup.ts hands to the tests through vitest's provide/inject.
import type { JWK } from 'jose';

type KeyPair = { privateJwk: JWK; publicJwk: JWK };
type TestAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';

declare module 'vitest' {
  export interface ProvidedContext {
    upstreamUrl: string;
    /** Private and public JWKs per mesh member (gateway, service-a, service-b, service-c). */
    memberKeys: Record<string, KeyPair>;
    /** Every member's public key, as MESH_PUBLIC_KEYS. */
    meshPublicKeys: string;
    /** Issuer key pairs per algorithm (kid = "<alg>-1"). */
    issuerKeys: Record<TestAlg, KeyPair>;
    /** Tokens minted outside jose: iss https://other-impl.test, aud meshwork, sub = implementation. */
    foreignTokens: { jsonwebtokenRS256: string; jsonwebtokenES256: string; opensslEdDSA: string };
    /** Public keys for the foreign tokens, as a JWKS JSON string. */
    foreignJwks: string;
    bundles: {
      serviceA: string;
      serviceB: string;
      intruder: string;
      gateway: string;
      faultyStore: string;
      compromised: string;
      dir: string;
    };
  }
}
