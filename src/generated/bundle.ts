/**
 * The routes/ directory as compiled by `scripts/build-config.ts` (run by wrangler's [build]
 * command and before tests), so what is in routes/ at deploy time is what runs.
 */
import type { MeshBundle } from '../config/schema.ts';
import data from './mesh-config.json';

export const bundledConfig = data as unknown as MeshBundle;
