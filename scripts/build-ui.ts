/** Builds the dashboard's assets alone: tsx scripts/build-ui.ts (see src/node/project/ui-assets.ts). */
import { buildUi } from '../src/node/project/ui-assets.ts';

console.log(`meshwork: built dashboard (${buildUi()})`);
