/**
 * The routes/ directory as compiled by `meshwork build` (wrangler's [build] command runs it, and
 * so do the tests), so what is in routes/ at deploy time is what runs. Every worker's wrangler
 * config maps `meshwork/config` to that file (`[alias] "meshwork/config" = ".../.meshwork/mesh-config.json"`,
 * written by `meshwork init`); without the alias the package's stub (unbuilt.ts) is bundled and
 * the worker fails at start-up saying what to add.
 */
import type { MeshBundle } from '../config/schema.ts';
import data from 'meshwork/config';

export const bundledConfig: MeshBundle = data;
