/**
 * The edge gateway worker (wrangler.toml `main`). The routes compiled into the bundle are
 * turned into matchers once, when the isolate loads this module.
 */
import { bundledConfig } from '../generated/bundle.ts';
import { compileMesh } from '../mesh/compile.ts';
import { createGateway } from './app.ts';

export default createGateway({ mesh: compileMesh(bundledConfig) });
