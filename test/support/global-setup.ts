/**
 * vitest globalSetup for the workers project. Everything here is real and runs in Node beside
 * workerd, handed to the tests through `inject`:
 *  - an HTTP server on 127.0.0.1: an echo backend (URL backends) and JWKS endpoints whose keys,
 *    Cache-Control and availability tests can change, and which count their fetches;
 *  - key material: a signing key per mesh member, and issuer keys for RS256/PS256/ES256/EdDSA;
 *  - tokens minted by other implementations than jose (jsonwebtoken, openssl);
 *  - the example services and a test intruder, bundled so workerd runs them as real workers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import jsonwebtoken from 'jsonwebtoken';
import type { TestProject } from 'vitest/node';
import { memberPair, type KeyPair } from '../../src/node/cli/keys.ts';
import { bundleWorker } from '../../scripts/bundle.ts';

type TestAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';

interface JwksEndpoint {
  keys: JWK[];
  maxAge: number | undefined;
  down: boolean;
  fetches: number;
}

let server: Server | undefined;

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

async function foreignTokens(dir: string) {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const claims = { iss: 'https://other-impl.test', aud: 'meshwork', exp, scope: 'read:a' };
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const toPem = async (k: CryptoKey) => {
    const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', k));
    return `-----BEGIN PRIVATE KEY-----\n${der
      .toString('base64')
      .match(/.{1,64}/g)!
      .join('\n')}\n-----END PRIVATE KEY-----\n`;
  };
  const jsonwebtokenRS256 = jsonwebtoken.sign({ ...claims, sub: 'jsonwebtoken-rs256' }, await toPem(rsa.privateKey), {
    algorithm: 'RS256',
    keyid: 'jwt-rs',
  });
  const jsonwebtokenES256 = jsonwebtoken.sign({ ...claims, sub: 'jsonwebtoken-es256' }, await toPem(ec.privateKey), {
    algorithm: 'ES256',
    keyid: 'jwt-ec',
  });

  // openssl: an Ed25519 key and a raw signature over "header.payload".
  const keyPem = join(dir, 'ed25519.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyPem]);
  const pubDer = execFileSync('openssl', ['pkey', '-in', keyPem, '-pubout', '-outform', 'DER']);
  const x = b64url(pubDer.subarray(pubDer.length - 32));
  const signingInput = `${b64url(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid: 'openssl-ed' }))}.${b64url(JSON.stringify({ ...claims, sub: 'openssl-eddsa' }))}`;
  const inputFile = join(dir, 'input');
  writeFileSync(inputFile, signingInput);
  const sig = execFileSync('openssl', ['pkeyutl', '-sign', '-inkey', keyPem, '-rawin', '-in', inputFile]);
  const opensslEdDSA = `${signingInput}.${b64url(sig)}`;

  const jwks = {
    keys: [
      { ...(await exportJWK(rsa.publicKey)), kid: 'jwt-rs', alg: 'RS256' },
      { ...(await exportJWK(ec.publicKey)), kid: 'jwt-ec', alg: 'ES256' },
      { kty: 'OKP', crv: 'Ed25519', x, kid: 'openssl-ed', alg: 'EdDSA' },
    ],
  };
  return { tokens: { jsonwebtokenRS256, jsonwebtokenES256, opensslEdDSA }, jwks: JSON.stringify(jwks) };
}

export async function setup(project: TestProject): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-test-'));
  const endpoints = new Map<string, JwksEndpoint>();
  const endpoint = (name: string) => {
    let e = endpoints.get(name);
    if (!e) endpoints.set(name, (e = { keys: [], maxAge: undefined, down: false, fetches: 0 }));
    return e;
  };

  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const [, kind, name] = url.pathname.split('/');
      if (kind === 'jwks' && name) {
        const e = endpoint(name);
        e.fetches++;
        if (e.down) {
          res.statusCode = 503;
          res.end('down');
          return;
        }
        res.setHeader('content-type', 'application/json');
        if (e.maxAge !== undefined) res.setHeader('cache-control', `public, max-age=${e.maxAge}`);
        res.end(JSON.stringify({ keys: e.keys }));
        return;
      }
      if (kind === 'jwks-control' && name) {
        // POST sets { keys?, maxAge?, down? }; any method answers the endpoint's state.
        const e = endpoint(name);
        if (req.method === 'POST') Object.assign(e, JSON.parse(Buffer.concat(chunks).toString() || '{}'));
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ fetches: e.fetches, down: e.down, keys: e.keys.length }));
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          name: 'url-backend',
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('test server has no port');
  project.provide('upstreamUrl', `http://127.0.0.1:${addr.port}`);

  const memberKeys: Record<string, KeyPair> = {};
  for (const m of ['gateway', 'service-a', 'service-b', 'service-c']) memberKeys[m] = await memberPair(m);
  project.provide('memberKeys', memberKeys);
  project.provide('meshPublicKeys', JSON.stringify({ keys: Object.values(memberKeys).map((k) => k.publicJwk) }));

  const issuerKeys = {} as Record<TestAlg, KeyPair>;
  for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `${alg}-1`;
    issuerKeys[alg] = {
      privateJwk: { ...(await exportJWK(privateKey)), kid, alg },
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg },
    };
  }
  project.provide('issuerKeys', issuerKeys);

  const foreign = await foreignTokens(dir);
  project.provide('foreignTokens', foreign.tokens);
  project.provide('foreignJwks', foreign.jwks);

  const out = join(dir, 'bundles');
  project.provide('bundles', {
    serviceA: await bundleWorker('examples/service-a/src/index.ts', out),
    serviceB: await bundleWorker('examples/service-b/src/index.ts', out),
    intruder: await bundleWorker('test/fixtures/intruder-service.ts', out),
    gateway: await bundleWorker('src/gateway/index.ts', out),
    faultyStore: await bundleWorker('test/fixtures/faulty-store.ts', out),
    compromised: await bundleWorker('test/fixtures/compromised-service.ts', out),
    dir: out,
  });
}

export async function teardown(): Promise<void> {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
}
