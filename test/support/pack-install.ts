/**
 * Packs meshwork (`npm pack`, which runs the prepack script as a publish would) and installs the
 * tarball into a fresh project outside the repository, as a user's `npm install meshwork` does.
 *
 * Offline and deterministic: the user project gets a package-lock.json holding exactly the
 * versions this repository's own lock pins for meshwork's dependencies and wrangler, so
 * `npm ci --offline` installs them from the npm cache that this repository's `npm ci` filled
 * (a range resolved afresh could pick a newer release the cache has never seen).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  [k: string]: unknown;
}

const REPO = resolve(import.meta.dirname, '../..');
const NPM_ENV = {
  ...process.env,
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};

export function npmPack(): string {
  const dest = mkdtempSync(join(tmpdir(), 'meshwork-pack-'));
  const out = execFileSync('npm', ['pack', '--pack-destination', dest, '--json'], {
    cwd: REPO,
    encoding: 'utf8',
    env: NPM_ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [info] = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string }>;
  return join(dest, basename(info!.filename));
}

/** The lock entries (path -> entry) that `roots` need, resolved as npm would in the repo. */
function closure(packages: Record<string, LockEntry>, roots: string[]): Map<string, LockEntry> {
  const out = new Map<string, LockEntry>();
  const visit = (from: string, name: string, optional: boolean) => {
    // Node's lookup: from's own node_modules, then each parent's, then the top level.
    let base = from;
    for (;;) {
      const path = `${base ? `${base}/` : ''}node_modules/${name}`;
      if (packages[path]) {
        if (out.has(path)) return;
        const entry = packages[path]!;
        out.set(path, entry);
        for (const d of Object.keys(entry.dependencies ?? {})) visit(path, d, false);
        for (const d of Object.keys(entry.optionalDependencies ?? {})) visit(path, d, true);
        for (const [d] of Object.entries(entry.peerDependencies ?? {})) {
          if (!entry.peerDependenciesMeta?.[d]?.optional) visit(path, d, false);
        }
        return;
      }
      if (!base) {
        if (!optional)
          throw new Error(`the repository's package-lock.json has no ${name} (needed by ${from || 'the app'})`);
        return;
      }
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  for (const r of roots) visit('', r, false);
  return out;
}

/** A new project outside the repo with meshwork (from `tarball`) and wrangler installed. */
export function installIntoFreshProject(tarball: string): string {
  const app = mkdtempSync(join(tmpdir(), 'meshwork-user-'));
  const repoPkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    version: string;
    dependencies: Record<string, string>;
    peerDependencies: Record<string, string>;
    bin: Record<string, string>;
    engines: Record<string, string>;
  };
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const wrangler = lock.packages['node_modules/wrangler']!.version!;
  const needed = closure(lock.packages, [...Object.keys(repoPkg.dependencies), 'wrangler']);
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  const pkg = {
    name: 'my-mesh',
    version: '1.0.0',
    private: true,
    devDependencies: { meshwork: `file:${tarball}`, wrangler },
  };
  const packages: Record<string, LockEntry> = {
    '': { name: pkg.name, version: pkg.version, devDependencies: pkg.devDependencies },
    'node_modules/meshwork': {
      version: repoPkg.version,
      resolved: `file:${tarball}`,
      integrity,
      dev: true,
      license: 'Apache-2.0',
      dependencies: repoPkg.dependencies,
      peerDependencies: repoPkg.peerDependencies,
      bin: repoPkg.bin,
      engines: repoPkg.engines,
    },
  };
  for (const [path, entry] of needed) {
    const { dev: _dev, devOptional, optional, ...rest } = entry;
    packages[path] = { ...rest, dev: true, ...(optional || devOptional ? { optional: true } : {}) };
  }
  writeFileSync(join(app, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  writeFileSync(
    join(app, 'package-lock.json'),
    `${JSON.stringify({ name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`,
  );
  execFileSync('npm', ['ci', '--offline', '--no-audit', '--no-fund'], {
    cwd: app,
    env: NPM_ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return app;
}
