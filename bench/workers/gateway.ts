// A gateway worker for benchmarks: the same createGateway as src/gateway/index.ts, with the
// config the bench injects at bundle time (esbuild define) instead of routes/.
import { createGateway } from '../../src/gateway/app.ts';
import { compilePlan } from '../../src/plan/compile.ts';
import type { MeshBundle } from '../../src/config/schema.ts';

declare const __MESH_BUNDLE__: MeshBundle;

export default createGateway({ plan: compilePlan(__MESH_BUNDLE__) });

export { RateLimiter } from '../../src/ratelimit/store.ts';
export { MeshTelemetry } from '../../src/control/telemetry/object.ts';
