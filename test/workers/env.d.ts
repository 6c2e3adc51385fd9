/* eslint-disable @typescript-eslint/consistent-type-imports -- a global declaration file: top-level imports would make it a module */
declare namespace Cloudflare {
  interface Env {
    UPSTREAM_URL: string;
    MESH_SIGNING_KEY: string;
    MESH_PUBLIC_KEYS: string;
    MESH_DEV_JWKS: string;
    MESH_KV: KVNamespace;
    ECHO: Fetcher;
    ECHO_V2: Fetcher;
    FLAKY_A: Fetcher;
    FLAKY_B: Fetcher;
    FLAKY_C: Fetcher;
    BROKEN: Fetcher;
    SERVICE_A: Fetcher;
    SERVICE_B_V1: Fetcher;
    SERVICE_B_V2: Fetcher;
    INTRUDER: Fetcher;
    COMPROMISED: Fetcher;
    MESH_RATE_LIMITER: DurableObjectNamespace<import('../../src/ratelimit/store.ts').RateLimiter>;
    FAULTY_LIMITER: DurableObjectNamespace;
    CRASHABLE_LIMITER: DurableObjectNamespace<import('../fixtures/faulty-store.ts').CrashableLimiter>;
    FAULTY_REGISTRY: DurableObjectNamespace<import('../fixtures/faulty-store.ts').FaultyRegistry>;
    MESH_HEARTBEAT: Service<import('../../src/control/registry/heartbeat.ts').RegistryHeartbeat>;
    MESH_REGISTRY: DurableObjectNamespace<import('../../src/control/registry/object.ts').MeshRegistry>;
    TELEMETRY_STORE: DurableObjectNamespace<import('../../src/control/telemetry/object.ts').MeshTelemetry>;
  }
}
