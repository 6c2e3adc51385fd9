/** The commands that need no gateway: validate, token, keys generate. */
import { existsSync } from 'node:fs';
import { SignJWT, importJWK } from 'jose';
import { Duration } from '../../config/schema.ts';
import { missingGatewayBindings } from '../config/bindings.ts';
import { findProjectRoot, loadProject, projectRoot, type MeshWorker } from '../project/project.ts';
import { CommandError, defineCommand, defineGroup, UsageError } from './command.ts';
import { devKeysPath, ensureDevKeys, memberPair } from './keys.ts';
import { emit, OUTPUT_OPTION, outputFormat } from './output.ts';
import { bundleDir, FILENAME_OPTION, issueLines, routesDir } from './routes.ts';

export const validate = defineCommand({
  name: 'validate',
  summary: 'check a routes directory, reporting errors as file:line:column',
  usage: '[dir | -f <dir>] [--check-bindings <wrangler config>] [-q] [-o json|yaml]',
  help: `Validates a routes directory exactly as the gateway will (meshwork apply sends the same files),
and reports each error as file:line:column: field: message. The directory defaults to the
project's routes (meshwork.yaml), else ./routes.

With --check-bindings, also checks that the gateway's wrangler config declares every binding
the routes send traffic to.

With -o json|yaml, prints { valid, dir, version, services, routes } when valid, or
{ valid: false, dir, errors: [{ file, line, column, field, message }] } (and exit 1) when not.`,
  args: ['dir'],
  options: {
    ...FILENAME_OPTION,
    'check-bindings': {
      type: 'string',
      value: 'wrangler config',
      description: "also check this gateway's wrangler config binds every backend the routes use",
    },
    quiet: { type: 'boolean', short: 'q', description: 'print nothing when valid' },
    ...OUTPUT_OPTION,
  },
  exitCodes: `exit codes:
  0  valid
  1  invalid (or the directory does not exist)
  2  usage error`,
  async run({ values, positionals }) {
    const format = outputFormat(values);
    const dir = routesDir(values.filename, positionals[0]);
    const result = await bundleDir(dir);
    if (!result.ok) {
      if (format !== 'text') emit(format, { valid: false, dir, errors: result.errors });
      throw new CommandError(`${result.errors.length} error(s) in ${dir}`, format === 'text' ? issueLines(result) : []);
    }
    const { services, routes } = result.bundle.config;
    const summary = {
      valid: true,
      dir,
      version: result.bundle.version,
      services: Object.keys(services),
      routes: routes.map((r) => r.name),
    };
    if (values['check-bindings']) {
      const missing = await missingGatewayBindings(result.bundle.config, values['check-bindings']);
      if (missing.length > 0) {
        if (format !== 'text') emit(format, { ...summary, valid: false, bindingErrors: missing });
        throw new CommandError(
          `${values['check-bindings']} lacks ${missing.length} binding(s) the routes in ${dir} use`,
          format === 'text' ? missing : [],
        );
      }
    }
    if (format !== 'text') emit(format, summary);
    else if (!values.quiet)
      console.log(
        `${dir}: valid (config ${summary.version}: ${summary.services.length} services, ${summary.routes.length} routes)`,
      );
    return 0;
  },
});

/** The workers whose .dev.vars get the dev keys: the project's, or just the gateway without one. */
function devWorkers(): MeshWorker[] {
  return findProjectRoot() ? loadProject().workers : [{ config: 'wrangler.toml', member: 'gateway' }];
}

export const token = defineCommand({
  name: 'token',
  summary: 'mint a user token the local dev gateway accepts',
  usage: '--sub <user> [--scope <s>]... [--ttl 1h] [--claim k=v]... [--aud <aud>] [-o json|yaml]',
  help: `Signs a JWT with the local dev issuer (https://dev.meshwork.local), whose keys are created on
first use under .meshwork/ in the project root (the nearest directory with meshwork.yaml, else
the current directory), and written into each worker's .dev.vars. The token is alone on the last
line of output:

  TOKEN=$(npx meshwork token --sub alice --scope read:a | tail -1)

With -o json|yaml: { token, sub, scope, issuer, audience, expiresAt }.`,
  options: {
    sub: { type: 'string', value: 'user', description: 'the subject (user id); required' },
    scope: {
      type: 'string',
      multiple: true,
      value: 'scope',
      description: 'a scope (or several, space/comma separated)',
    },
    ttl: { type: 'string', default: '1h', value: 'duration', description: 'lifetime: 30m, 1h, 3600 (default 1h)' },
    claim: { type: 'string', multiple: true, value: 'name=value', description: 'an extra claim' },
    aud: { type: 'string', value: 'audience', description: 'the audience (default: meshwork)' },
    ...OUTPUT_OPTION,
  },
  async run({ values }) {
    const format = outputFormat(values);
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
    const root = projectRoot();
    const workers = devWorkers();
    const created = !existsSync(devKeysPath(root));
    const { issuer } = await ensureDevKeys(root, workers);
    const scopes = (values.scope ?? []).flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
    const audience = values.aud ?? issuer.audience;
    const exp = Math.floor(Date.now() / 1000) + Math.round(ttl.data);
    const jwt = await new SignJWT({ ...claims, ...(scopes.length ? { scope: scopes.join(' ') } : {}) })
      .setProtectedHeader({ alg: 'ES256', kid: issuer.privateJwk.kid!, typ: 'JWT' })
      .setIssuer(issuer.issuer)
      .setAudience(audience)
      .setSubject(values.sub)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(await importJWK(issuer.privateJwk, 'ES256'));
    if (created)
      console.error(
        `meshwork: created dev keys in ${devKeysPath(root)} (restart \`npx meshwork dev\` if it is running)`,
      );
    if (format !== 'text') {
      emit(format, {
        token: jwt,
        sub: values.sub,
        scope: scopes.join(' '),
        issuer: issuer.issuer,
        audience,
        expiresAt: new Date(exp * 1000).toISOString(),
      });
      return 0;
    }
    console.error(
      `meshwork: dev token for ${values.sub}${scopes.length ? ` with scope ${scopes.join(' ')}` : ''}, valid ${values.ttl}`,
    );
    console.log(jwt);
    return 0;
  },
});

const generate = defineCommand({
  name: 'generate',
  summary: 'a new mesh signing key pair for a member (the gateway or a service)',
  usage: '--member <name>',
  help: `Prints the member's private JWK, to store with
  echo '<that line>' | npx wrangler secret put MESH_SIGNING_KEY -c <its wrangler config>
and its public JWK, to add to the "keys" of MESH_PUBLIC_KEYS (or identity.publicKeys) on every
worker. The key id "<member>.<date>" binds the key to the member.`,
  options: { member: { type: 'string', value: 'name', description: '"gateway" or a service name; required' } },
  async run({ values }) {
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
  },
});

export const keys = defineGroup({
  name: 'keys',
  summary: 'mesh signing keys: keys generate --member <name>',
  help: 'Key material for the mesh members (the gateway and each service).',
  subcommands: [generate],
});
