/**
 * `meshwork <command>`. Exit codes: 0 success, 1 the command ran and failed (e.g. an invalid
 * config), 2 usage error.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SignJWT, importJWK } from 'jose';
import { missingGatewayBindings } from '../config/bindings.ts';
import { bundleRoutesDir } from '../config/load-dir.ts';
import { Duration } from '../../config/schema.ts';
import { formatIssue } from '../../config/validate.ts';
import { MESH_WORKERS } from '../dev/workers.ts';
import { apply, DEFAULT_URL, diff, rollback, status, UsageError } from './control.ts';
import { devKeysPath, ensureDevKeys, memberPair } from './keys.ts';
import { metrics, top } from './observe.ts';

/** The repository root (where routes/ and .meshwork/ live). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const USAGE = `usage: meshwork <command> [options]

commands:
  validate [dir] [--check-bindings <wrangler config>]
                    check a routes directory (default: routes) and report errors as
                    file:line:column; with --check-bindings, also that the gateway's wrangler
                    config declares every binding the routes send traffic to
  token --sub <user> [--scope <s>]... [--ttl 1h] [--claim k=v]... [--aud <aud>]
                    mint a token the local dev gateway accepts (dev issuer keys are created on
                    first use); the token is alone on the last line of output
  keys generate --member <name>
                    a new mesh signing key for a member ("gateway" or a service): the private
                    JWK for \`wrangler secret put MESH_SIGNING_KEY\` and the public JWK to add to
                    every worker's MESH_PUBLIC_KEYS
  apply [dir] [--url U] [--token T] [-m message] [--force]
                    apply a routes directory to a running gateway (validated here and there;
                    rejected whole if invalid; one that removes every route or service needs
                    --force)
  diff [dir] [--url U] [--token T]
                    what apply would change
  rollback [revision] [--url U] [--token T]
                    back to an earlier config revision (default: the one in force before;
                    0 = the routes bundled at deploy)
  status [--url U] [--token T] [--json]
                    services, versions, weights, rotation and health
  metrics [--url U] [--token T]
                    the gateway's Prometheus metrics (GET /_mesh/metrics), as a scraper sees
                    them
  top [--url U] [--token T] [--interval 2] [--once]
                    live traffic: requests per second, error rate, p50/p99 latency and health
                    of every caller -> service edge over the last minute, and the hot
                    rate-limit keys; redrawn every --interval seconds until Ctrl-C, or one
                    frame with --once (also: status --watch)
  help              show this help

--url defaults to ${DEFAULT_URL} (the local dev mesh) or MESHWORK_URL; the admin token is
--token, MESH_ADMIN_TOKEN, or for the local mesh the one npm run dev created.
`;

type Command = (args: string[]) => Promise<number>;

async function validate(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { quiet: { type: 'boolean', short: 'q' }, 'check-bindings': { type: 'string' } },
  });
  if (positionals.length > 1) throw new UsageError('validate takes at most one directory');
  const dir = positionals[0] ?? 'routes';
  const result = await bundleRoutesDir(dir);
  if (!result.ok) {
    for (const issue of result.errors) console.error(formatIssue(issue));
    console.error(`\n${result.errors.length} error(s) in ${dir}`);
    return 1;
  }
  if (values['check-bindings']) {
    const missing = await missingGatewayBindings(result.bundle.config, values['check-bindings']);
    if (missing.length > 0) {
      for (const m of missing) console.error(m);
      return 1;
    }
  }
  if (!values.quiet) {
    const { services, routes } = result.bundle.config;
    console.log(
      `${dir}: valid (config ${result.bundle.version}: ${Object.keys(services).length} services, ${routes.length} routes)`,
    );
  }
  return 0;
}

async function token(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      sub: { type: 'string' },
      scope: { type: 'string', multiple: true },
      ttl: { type: 'string', default: '1h' },
      claim: { type: 'string', multiple: true },
      aud: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.sub) throw new UsageError('token needs --sub <user>');
  const ttl = Duration.safeParse(/^\d+$/.test(values.ttl) ? Number(values.ttl) : values.ttl);
  if (!ttl.success || ttl.data <= 0)
    throw new UsageError(`--ttl must be a duration like 30m, 1h or 3600, got "${values.ttl}"`);
  const claims: Record<string, string> = {};
  for (const c of values.claim ?? []) {
    const eq = c.indexOf('=');
    if (eq <= 0) throw new UsageError(`--claim must be name=value, got "${c}"`);
    claims[c.slice(0, eq)] = c.slice(eq + 1);
  }
  const created = !existsSync(devKeysPath(ROOT));
  const keys = await ensureDevKeys(ROOT, MESH_WORKERS);
  const { issuer } = keys;
  const scopes = (values.scope ?? []).flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
  const jwt = await new SignJWT({ ...claims, ...(scopes.length ? { scope: scopes.join(' ') } : {}) })
    .setProtectedHeader({ alg: 'ES256', kid: issuer.privateJwk.kid!, typ: 'JWT' })
    .setIssuer(issuer.issuer)
    .setAudience(values.aud ?? issuer.audience)
    .setSubject(values.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + Math.round(ttl.data))
    .sign(await importJWK(issuer.privateJwk, 'ES256'));
  if (created) console.error('meshwork: created local dev keys in .meshwork/ (restart npm run dev if it is running)');
  console.error(
    `meshwork: dev token for ${values.sub}${scopes.length ? ` with scope ${scopes.join(' ')}` : ''}, valid ${values.ttl}`,
  );
  console.log(jwt);
  return 0;
}

async function keys(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { member: { type: 'string' } } });
  if (positionals[0] !== 'generate' || positionals.length !== 1)
    throw new UsageError('usage: meshwork keys generate --member <name>');
  const member = values.member;
  if (!member || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(member))
    throw new UsageError('--member must be "gateway" or a service name');
  const pair = await memberPair(member);
  console.log(`# Private key of ${member}: store it as that worker's secret, never in git:`);
  console.log(
    `#   echo '<the line below>' | npx wrangler secret put MESH_SIGNING_KEY -c <${member}'s wrangler config>`,
  );
  console.log(JSON.stringify(pair.privateJwk));
  console.log(`# Public key: add it to the "keys" of MESH_PUBLIC_KEYS (or identity.publicKeys) on every worker:`);
  console.log(JSON.stringify(pair.publicJwk));
  return 0;
}

const COMMANDS: Record<string, Command> = {
  validate,
  token,
  keys,
  apply: (args) => apply(args, ROOT),
  diff: (args) => diff(args, ROOT),
  rollback: (args) => rollback(args, ROOT),
  // status --watch: the live view, as top.
  status: (args) => {
    const watch = args.filter((a) => a !== '--watch');
    return watch.length < args.length ? top(watch, ROOT) : status(args, ROOT);
  },
  metrics: (args) => metrics(args, ROOT),
  top: (args) => top(args, ROOT),
  help: async () => {
    console.log(USAGE);
    return 0;
  },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name === undefined || name === '--help' || name === '-h' ? COMMANDS.help! : COMMANDS[name];
  if (!command) {
    console.error(`meshwork: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`meshwork ${name}: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    console.error(`meshwork ${name}: ${(e as Error).message}`);
    return 1;
  }
}
