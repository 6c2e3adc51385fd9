/**
 * The control-plane commands: apply, diff, rollback, history, status. They call the gateway's
 * admin API (src/control/admin/), found and authenticated as gateway.ts says.
 */
import { CommandError, defineCommand, UsageError } from './command.ts';
import { admin, connection, GATEWAY_HELP, GATEWAY_OPTIONS } from './gateway.ts';
import { runTop, TOP_OPTIONS } from './observe.ts';
import { cell, emit, OUTPUT_OPTION, outputFormat, printable, table } from './output.ts';
import { bundleDir, FILENAME_OPTION, issueLines, routesDir } from './routes.ts';

// For older importers; these live in command.ts, output.ts and gateway.ts now.
export { UsageError } from './command.ts';
export { printable } from './output.ts';
export { connection, DEFAULT_URL } from './gateway.ts';

/** The routes files to send, checked here first (the gateway checks them again). */
async function localFiles(dir: string) {
  const result = await bundleDir(dir);
  if (!result.ok)
    throw new CommandError(`${result.errors.length} error(s) in ${dir}; nothing was sent`, issueLines(result));
  return result.bundle.sources!;
}

export const apply = defineCommand({
  name: 'apply',
  summary: 'apply a routes directory to a running gateway',
  usage: '[-f <dir> | dir] [-m <message>] [--force] [--url <URL>] [--token <TOKEN>]',
  help: `Sends the routes directory (default: the project's routes, from meshwork.yaml; else ./routes) to
the gateway, which validates it again with what only it knows (its bindings) and serves it
within registry.refreshInterval. An invalid config is rejected whole; nothing changes. A config
that removes every route or every service needs --force. Each apply is a revision: see
meshwork history, undo with meshwork rollback.

${GATEWAY_HELP}`,
  args: ['dir'],
  options: {
    ...FILENAME_OPTION,
    message: { type: 'string', short: 'm', value: 'message', description: 'why: kept in the history' },
    force: { type: 'boolean', description: 'apply even a config that removes every route or service' },
    ...GATEWAY_OPTIONS,
  },
  async run({ values, positionals }) {
    const dir = routesDir(values.filename, positionals[0]);
    const conn = connection(values);
    const files = await localFiles(dir);
    const json = await admin(conn, 'POST', '/config', {
      files,
      ...(values.message ? { message: values.message } : {}),
      ...(values.force ? { force: true } : {}),
    });
    if (typeof json.revision !== 'number' || typeof json.version !== 'string')
      throw new CommandError(
        `${conn.url} answered the apply with something unexpected: ${printable(JSON.stringify(json).slice(0, 200))}`,
      );
    if (json.unchanged)
      console.log(`${conn.url}: already running config ${json.version} (revision ${json.revision}); nothing changed`);
    else console.log(`${conn.url}: applied config ${json.version} as revision ${json.revision}`);
    return 0;
  },
});

/** The admin API's ConfigDiff (src/config/diff.ts). */
interface ConfigDiff {
  from: string;
  to: string;
  patch: string;
  summary: {
    routes: Record<string, string[]>;
    services: Record<string, string[]>;
    rateLimits?: Record<string, string[]>;
    sections: string[];
  };
}

export const diff = defineCommand({
  name: 'diff',
  summary: 'what apply would change, as a patch and a summary',
  usage: '[-f <dir> | dir] [-o json|yaml] [--url <URL>] [--token <TOKEN>]',
  help: `Compares the routes directory (default: the project's routes, from meshwork.yaml; else
./routes) with the config the gateway runs, as the gateway would apply it. Exit code as kubectl
diff: 0 when there is no difference, 1 when there is one, so that scripts can ask
\`meshwork diff -f routes >/dev/null || meshwork apply -f routes\`.

With -o json|yaml: the admin API's answer, { from, to, patch, summary }.

${GATEWAY_HELP}`,
  args: ['dir'],
  options: { ...FILENAME_OPTION, ...OUTPUT_OPTION, ...GATEWAY_OPTIONS },
  exitCodes: `exit codes:
  0  no differences
  1  differences
  2  usage error
  3  failed: invalid routes here, or the gateway refused or could not be reached`,
  failureCode: 3,
  async run({ values, positionals }) {
    const format = outputFormat(values);
    const dir = routesDir(values.filename, positionals[0]);
    const conn = connection(values);
    const files = await localFiles(dir);
    const d = (await admin(conn, 'POST', '/diff', { files })) as unknown as ConfigDiff;
    if (typeof d.patch !== 'string' || !d.summary || !Array.isArray(d.summary.sections))
      throw new CommandError(`${conn.url} answered the diff with something unexpected`);
    const { summary } = d;
    const changed =
      d.patch !== '' ||
      summary.sections.length > 0 ||
      [summary.routes, summary.services, summary.rateLimits ?? {}].some((c) =>
        Object.values(c ?? {}).some((n) => n.length > 0),
      );
    const differs = d.from !== d.to && changed;
    if (format !== 'text') {
      emit(format, d);
      return differs ? 1 : 0;
    }
    if (!differs) {
      // Same files, different version: the config was validated by another meshwork release.
      const note = d.from === d.to ? '' : ` (same routes files; version ${d.to} when applied by this release)`;
      console.log(`no change: ${conn.url} runs config ${printable(d.from)}${note}`);
      return 0;
    }
    process.stdout.write(printable(d.patch));
    console.log(`\nconfig ${printable(d.from)} -> ${printable(d.to)}`);
    for (const kind of ['routes', 'services', 'rateLimits'] as const) {
      for (const change of ['added', 'removed', 'changed']) {
        const names = summary[kind]?.[change] ?? [];
        if (names.length) console.log(`  ${kind} ${change}: ${names.map(cell).join(', ')}`);
      }
    }
    if (summary.sections.length) console.log(`  sections changed: ${summary.sections.map(cell).join(', ')}`);
    return 1;
  },
});

export const rollback = defineCommand({
  name: 'rollback',
  summary: 'back to an earlier config revision (default: the one in force before)',
  usage: '[revision | version | --to-bundled] [--url <URL>] [--token <TOKEN>]',
  help: `Puts an earlier config back in force: a revision number or a config version (the
12-hex-digit hash meshwork history and status show); without one, the config in force before
the current one. --to-bundled (= revision 0) goes back to the routes bundled into the gateway at
deploy. A rollback is itself recorded in the history; nothing is erased.

${GATEWAY_HELP}`,
  args: ['revision'],
  options: {
    'to-bundled': { type: 'boolean', description: 'back to the routes bundled at deploy (revision 0)' },
    ...GATEWAY_OPTIONS,
  },
  async run({ values, positionals }) {
    const arg = positionals[0];
    if (values['to-bundled'] && arg !== undefined && arg !== '0')
      throw new UsageError(`--to-bundled is revision 0; give it or "${arg}", not both`);
    // A revision number, or a config version (the 12-hex-digit hash status and apply show).
    let target: { revision: number } | { version: string } | Record<string, never> = {};
    if (values['to-bundled']) target = { revision: 0 };
    else if (arg !== undefined) {
      if (/^[0-9a-f]{12}$/.test(arg)) target = { version: arg };
      else if (/^\d+$/.test(arg)) target = { revision: Number(arg) };
      else throw new UsageError(`takes a config revision number or version (see meshwork history), got "${arg}"`);
    }
    const conn = connection(values);
    const back = await admin(conn, 'POST', '/rollback', target);
    console.log(`${conn.url}: config back to revision ${String(back.revision)} (${printable(String(back.version))})`);
    return 0;
  },
});

/** The admin API's history (GET /_mesh/admin/history; the registry's ConfigEntry). */
interface History {
  configRevision: number;
  configs: Array<{ revision: number; version: string; appliedAt: number; appliedBy: string; message?: string }>;
}

export const history = defineCommand({
  name: 'history',
  summary: 'the config revisions of a gateway, and which one is in force',
  usage: '[-o json|yaml] [--url <URL>] [--token <TOKEN>]',
  help: `Lists the config revisions the gateway keeps (revision, version, when, who, message), oldest
first, with the one in force marked *. Revision 0 is the routes bundled at deploy. Any of them
is a target for meshwork rollback.

With -o json|yaml: the admin API's answer, { configRevision, configs, audit }.

${GATEWAY_HELP}`,
  options: { ...OUTPUT_OPTION, ...GATEWAY_OPTIONS },
  async run({ values }) {
    const format = outputFormat(values);
    const conn = connection(values);
    const json = await admin(conn, 'GET', '/history');
    const h = json as unknown as History;
    expectShape(conn, 'history', typeof h.configRevision === 'number' && Array.isArray(h.configs));
    if (format !== 'text') {
      emit(format, json);
      return 0;
    }
    const mark = (revision: number) => (revision === h.configRevision ? '*' : '');
    const rows = [
      ['CURRENT', 'REVISION', 'VERSION', 'APPLIED', 'BY', 'MESSAGE'],
      [mark(0), '0', '-', 'at deploy', '-', 'the routes bundled at deploy'],
    ];
    const configs = [...h.configs].sort((a, b) => a.revision - b.revision);
    for (const c of configs) {
      rows.push([
        mark(c.revision),
        String(c.revision),
        cell(String(c.version)),
        Number.isFinite(c.appliedAt) ? new Date(c.appliedAt).toISOString().replace(/\.\d+Z$/, 'Z') : '-',
        cell(String(c.appliedBy || '-')),
        cell(String(c.message ?? '')),
      ]);
    }
    console.log(`${conn.url}: config revision ${h.configRevision} in force\n`);
    console.log(table(rows));
    const first = configs[0]?.revision;
    if (first !== undefined && first > 1) console.log(`\n(revisions 1 to ${first - 1} are no longer kept)`);
    return 0;
  },
});

function ago(iso: string | null): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

export const status = defineCommand({
  name: 'status',
  summary: 'services, versions, weights, rotation and health',
  usage: '[-o json|yaml] [--watch [--interval 2] [--once]] [--url <URL>] [--token <TOKEN>]',
  help: `The config in force and every service's endpoints: version, target, weight, whether it is in
rotation, its registration status, health and last heartbeat. --watch is the live traffic view
(meshwork top).

With -o json|yaml (or --json): the admin API's answer, { configVersion, configRevision, revision,
services }.

${GATEWAY_HELP}`,
  options: {
    ...OUTPUT_OPTION,
    json: { type: 'boolean', description: 'the same as -o json' },
    watch: { type: 'boolean', description: 'the live view instead, as meshwork top' },
    ...TOP_OPTIONS,
    ...GATEWAY_OPTIONS,
  },
  async run({ values }) {
    if (values.json && values.output !== undefined && values.output !== 'json')
      throw new UsageError(`--json is -o json; it cannot go with -o ${values.output}`);
    const format = values.json ? 'json' : outputFormat(values);
    if (values.watch) return runTop(values);
    if (values.once || values.interval !== TOP_OPTIONS.interval.default)
      throw new UsageError('--interval and --once go with --watch');
    const conn = connection(values);
    const json = await admin(conn, 'GET', '/status');
    expectShape(conn, 'status', typeof json.configVersion === 'string' && Array.isArray(json.services));
    if (format !== 'text') {
      emit(format, json);
      return 0;
    }
    // The admin API's status rows (src/control/admin/status.ts).
    type Row = {
      endpoint: string;
      version: string | null;
      target: string;
      weight: number;
      inRotation: boolean;
      registered: boolean;
      status: string;
      health: string;
      lastHeartbeat: string | null;
    };
    const s = json as {
      configVersion: string;
      configRevision: number;
      revision: number;
      services: Array<{ name: string; endpoints: Row[] }>;
    };
    const bundled = s.configRevision === 0 ? ', the bundled routes/' : '';
    console.log(
      `${conn.url}: config ${printable(String(s.configVersion))} (revision ${s.configRevision}${bundled}), registry revision ${s.revision}\n`,
    );
    const rows = [['SERVICE', 'VERSION', 'ENDPOINT', 'TARGET', 'WEIGHT', 'ROTATION', 'STATUS', 'HEALTH', 'HEARTBEAT']];
    for (const svc of s.services) {
      for (const b of svc.endpoints) {
        rows.push([
          svc.name,
          b.version ?? '-',
          b.endpoint.slice(b.endpoint.indexOf('/') + 1),
          b.target,
          String(b.weight),
          b.inRotation ? 'in' : 'OUT',
          b.status,
          b.health,
          ago(b.lastHeartbeat),
        ]);
      }
    }
    // Every cell is the gateway's data (a service may name its own version): printed, never run.
    console.log(table(rows.map((r) => r.map(cell))));
    return 0;
  },
});

/** An admin API answer without the shape this release reads: another kind of server, or another release. */
function expectShape(conn: { url: string }, call: string, ok: boolean): void {
  if (!ok)
    throw new CommandError(
      `${conn.url} answered the ${call} call with something unexpected; is it a meshwork gateway of this release?`,
    );
}
