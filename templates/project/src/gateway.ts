/**
 * The mesh's edge gateway: meshwork's, routing by this project's routes/ (compiled in by
 * `meshwork build`, the [build] command of ../wrangler.toml). The Durable Object classes and the
 * entrypoints services bind to are exported from here, as wrangler needs them.
 */
export {
  default,
  MeshRegistry,
  MeshTelemetry,
  RateLimiter,
  RateLimits,
  RegistryHeartbeat,
  Telemetry,
} from 'meshwork/gateway';
