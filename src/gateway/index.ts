/**
 * The edge gateway worker (wrangler.toml `main`). It routes by the routes/ compiled into the
 * bundle, overlaid by the registry's latest snapshot (applied configs, live instances) read
 * from KV; matchers are compiled once per config version, not per request.
 */
import { bundledConfig } from '../generated/bundle.ts';
import { MeshSource } from '../registry/source.ts';
import { createGateway } from './app.ts';

export default createGateway({ source: new MeshSource(bundledConfig) });

/** The rate-limit bucket store (Durable Object class; services bind to it by script name). */
export { RateLimiter } from '../ratelimit/store.ts';
/** The service registry and control plane's source of truth (Durable Object class). */
export { MeshRegistry } from '../control/registry/object.ts';
/** What services bind to for self-registration (named entrypoint). */
export { RegistryHeartbeat } from '../control/registry/heartbeat.ts';
/** What services bind to for their own rate limits (named entrypoint; never the Durable Objects). */
export { RateLimits } from '../control/limits.ts';
/** The mesh's metrics, summed across isolates (Durable Object class). */
export { MeshTelemetry } from '../control/telemetry/object.ts';
/** What services bind to for reporting their calls' metrics (named entrypoint). */
export { Telemetry } from '../control/telemetry/entrypoint.ts';
