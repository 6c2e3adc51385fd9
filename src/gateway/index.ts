/**
 * The edge gateway worker (wrangler.toml `main`). The routes compiled into the bundle are
 * turned into matchers once, when the isolate loads this module.
 */
import { bundledConfig } from '../generated/bundle.ts';
import { compileMesh } from '../mesh/compile.ts';
import { createGateway } from './app.ts';

export default createGateway({ mesh: compileMesh(bundledConfig) });

/** The rate-limit bucket store (Durable Object class; services bind to it by script name). */
export { RateLimiter } from '../ratelimit/store.ts';
