/**
 * The architecture, checked on every `npm run lint`: which folder of src/ may import which.
 * Each layer may import only the layers listed for it (all of them below it), so the folders
 * form a DAG: a new import cycle between folders fails here, and so does one between modules.
 * docs/architecture.md draws the same picture.
 */
const LAYERS = {
  core: [],
  config: ['core'],
  generated: ['config'],
  router: ['core', 'config'],
  auth: ['core', 'config'],
  identity: ['core', 'config'],
  ratelimit: ['core', 'config'],
  // Pure state machines of the call path (balancers, outlier detection, retry budgets).
  resilience: ['core'],
  // Metrics, spans and access logs: the formats and the per-isolate buffers (no I/O of its own but the export).
  telemetry: ['core', 'config'],
  runtime: ['core', 'config', 'auth', 'identity', 'ratelimit', 'resilience', 'telemetry'],
  traffic: ['core', 'config', 'auth', 'identity', 'resilience', 'runtime', 'telemetry'],
  plan: ['core', 'config', 'router', 'auth', 'identity', 'ratelimit', 'traffic', 'telemetry'],
  registry: ['core', 'config', 'identity', 'plan', 'runtime', 'traffic'],
  control: ['core', 'config', 'generated', 'identity', 'plan', 'ratelimit', 'registry', 'telemetry'],
  gateway: [
    'core',
    'config',
    'generated',
    'auth',
    'plan',
    'router',
    'runtime',
    'traffic',
    'registry',
    'control',
    'ratelimit',
    'telemetry',
  ],
  wrapper: [
    'core',
    'config',
    'generated',
    'auth',
    'plan',
    'ratelimit',
    'runtime',
    'traffic',
    'registry',
    'control',
    'telemetry',
  ],
  // Node-only code (CLI, loading routes from disk, dev tooling): never imported by workers.
  node: ['core', 'config', 'telemetry'],
};

const folders = Object.keys(LAYERS);

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Modules must not import each other in a circle.',
      from: {},
      to: { circular: true },
    },
    ...folders.map((layer) => ({
      name: `layer-${layer}`,
      severity: 'error',
      comment: `src/${layer} may import only: ${LAYERS[layer].join(', ') || 'nothing of ours'} (see .dependency-cruiser.cjs)`,
      from: { path: `^src/${layer}/` },
      to: { path: `^src/(?!(${[layer, ...LAYERS[layer]].join('|')})/)` },
    })),
    {
      name: 'src-stays-in-src',
      severity: 'error',
      comment: 'src/ never imports scripts/, bench/, test/ or examples/.',
      from: { path: '^src/' },
      to: { path: '^(scripts|bench|test|examples)/' },
    },
    {
      name: 'node-only-in-node',
      severity: 'error',
      comment: 'Worker code does not use Node built-ins; Node-only code lives in src/node.',
      from: { path: '^src/(?!node/)' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'core-libraries',
      severity: 'error',
      comment: 'src/core uses only jose and path-to-regexp of the libraries.',
      from: { path: '^src/core/' },
      to: { dependencyTypesNot: ['local', 'core'], pathNot: '(^|/)node_modules/(jose|path-to-regexp)/' },
    },
    {
      name: 'runtime-modules',
      severity: 'error',
      comment: 'cloudflare:workers (Durable Objects, entrypoints) only where those classes are defined.',
      from: {
        path: '^src/',
        pathNot:
          '^src/(ratelimit/store|control/limits|control/registry/(object|heartbeat)|control/telemetry/(object|entrypoint))\\.ts$',
      },
      to: { path: '^cloudflare:' },
    },
    {
      name: 'known-folders',
      severity: 'error',
      comment: 'Every folder of src/ has a place in LAYERS.',
      from: { path: `^src/(?!(${folders.join('|')})/)` },
      to: {},
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true, pathNot: '^cloudflare:' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
    moduleSystems: ['es6'],
  },
};
