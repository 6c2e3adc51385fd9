/** `meshwork context set|use|list|delete`: saved gateways, as kubectl's contexts (saved-contexts.ts). */
import { CommandError, defineCommand, defineGroup, UsageError } from './command.ts';
import { gatewayUrl } from './gateway.ts';
import { cell, emit, OUTPUT_OPTION, outputFormat, table } from './output.ts';
import { configPath, readConfig, writeConfig, type SavedContext } from './saved-contexts.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function contextName(positionals: string[], verb: string): string {
  const name = positionals[0];
  if (name === undefined) throw new UsageError(`${verb} needs a context name`);
  if (!NAME.test(name))
    throw new UsageError(`a context name is letters, digits, ".", "_" and "-" (up to 63), got "${name}"`);
  return name;
}

function unknown(name: string, contexts: Record<string, SavedContext>): CommandError {
  const known = Object.keys(contexts);
  return new CommandError(
    `no context "${name}" in ${configPath()}${known.length ? ` (have: ${known.join(', ')})` : '; create it with `meshwork context set`'}`,
  );
}

const FILE_HELP = `Contexts are kept in $MESHWORK_CONFIG, else $XDG_CONFIG_HOME/meshwork/config.json, else
~/.config/meshwork/config.json, written with mode 0600.`;

const set = defineCommand({
  name: 'set',
  summary: 'save a gateway under a name (replacing one of that name)',
  usage: '<name> --url <https URL> [--token-env <VAR> | --token <TOKEN>]',
  help: `Saves the gateway's URL, and where its admin token comes from: --token-env names an
environment variable read at each use (nothing secret in the file; preferred), --token stores the
token itself. The URL must be https://, except for this machine (http://127.0.0.1, localhost):
a token never travels in the clear. Select the context with meshwork context use <name>.

${FILE_HELP}`,
  args: ['name'],
  options: {
    url: { type: 'string', value: 'URL', description: "the gateway's URL; required" },
    'token-env': {
      type: 'string',
      value: 'VAR',
      description: 'the environment variable that holds its admin token',
    },
    token: { type: 'string', value: 'TOKEN', description: 'the admin token itself (stored in the file)' },
  },
  run({ values, positionals }) {
    const name = contextName(positionals, 'set');
    if (values.url === undefined) throw new UsageError('set needs --url <https URL>');
    const { url } = gatewayUrl(values.url, '--url');
    if (values.token !== undefined && values['token-env'] !== undefined)
      throw new UsageError('give --token-env or --token, not both');
    if (values['token-env'] !== undefined && !ENV_NAME.test(values['token-env']))
      throw new UsageError(`--token-env must be an environment variable name, got "${values['token-env']}"`);
    if (values.token === '') throw new UsageError('--token needs a value');
    const path = configPath();
    const config = readConfig(path);
    const replaced = name in config.contexts;
    config.contexts[name] = {
      url,
      ...(values['token-env'] ? { tokenEnv: values['token-env'] } : {}),
      ...(values.token ? { token: values.token } : {}),
    };
    writeConfig(config, path);
    const token = values['token-env']
      ? `, its token from $${values['token-env']}`
      : values.token
        ? ', its token stored in the file'
        : '';
    console.log(`context "${name}" ${replaced ? 'replaced' : 'saved'}: ${url}${token} (${path})`);
    if (config.currentContext !== name) console.log(`use it with: meshwork context use ${name}`);
    return 0;
  },
});

const use = defineCommand({
  name: 'use',
  summary: 'make a saved context the current one (--none: no current context)',
  usage: '<name> | --none',
  help: `Commands that call a gateway then go to that context's gateway, unless --url or MESHWORK_URL
says otherwise. --none clears the choice: back to the project's dev mesh.

${FILE_HELP}`,
  args: ['name'],
  options: { none: { type: 'boolean', description: 'no current context' } },
  run({ values, positionals }) {
    const path = configPath();
    const config = readConfig(path);
    if (values.none) {
      if (positionals.length > 0) throw new UsageError('give a name or --none, not both');
      delete config.currentContext;
      writeConfig(config, path);
      console.log('no current context: commands go to the dev mesh unless --url or MESHWORK_URL says otherwise');
      return 0;
    }
    const name = contextName(positionals, 'use');
    const context = config.contexts[name];
    if (!context) throw unknown(name, config.contexts);
    config.currentContext = name;
    writeConfig(config, path);
    console.log(`current context: ${name} (${context.url})`);
    return 0;
  },
});

const list = defineCommand({
  name: 'list',
  summary: 'the saved contexts, the current one marked *',
  usage: '[-o json|yaml]',
  help: `Lists each context's name, URL and where its token comes from (never the token).
With -o json|yaml: { currentContext, contexts: [{ name, url, tokenEnv?, tokenStored, current }] }.

${FILE_HELP}`,
  options: { ...OUTPUT_OPTION },
  run({ values }) {
    const format = outputFormat(values);
    const config = readConfig();
    const contexts = Object.entries(config.contexts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, c]) => ({
        name,
        url: c.url,
        ...(c.tokenEnv ? { tokenEnv: c.tokenEnv } : {}),
        tokenStored: Boolean(c.token),
        current: name === config.currentContext,
      }));
    if (format !== 'text') {
      emit(format, { currentContext: config.currentContext ?? null, contexts });
      return 0;
    }
    if (contexts.length === 0) {
      console.log(`no saved contexts (${configPath()}); add one with meshwork context set <name> --url <URL>`);
      return 0;
    }
    const rows = [['CURRENT', 'NAME', 'URL', 'TOKEN']];
    for (const c of contexts)
      rows.push([
        c.current ? '*' : '',
        cell(c.name),
        cell(c.url),
        c.tokenEnv ? `$${cell(c.tokenEnv)}` : c.tokenStored ? 'stored' : '-',
      ]);
    console.log(table(rows));
    return 0;
  },
});

const del = defineCommand({
  name: 'delete',
  summary: 'forget a saved context',
  usage: '<name>',
  help: `Removes the context (and any token stored with it). If it was the current one, there is no
current context afterwards.

${FILE_HELP}`,
  args: ['name'],
  run({ positionals }) {
    const name = contextName(positionals, 'delete');
    const path = configPath();
    const config = readConfig(path);
    if (!(name in config.contexts)) throw unknown(name, config.contexts);
    delete config.contexts[name];
    const wasCurrent = config.currentContext === name;
    if (wasCurrent) delete config.currentContext;
    writeConfig(config, path);
    console.log(`context "${name}" deleted${wasCurrent ? '; there is no current context now' : ''}`);
    return 0;
  },
});

export const context = defineGroup({
  name: 'context',
  summary: 'saved gateways: context set|use|list|delete',
  help: `Named gateways, as kubectl's contexts. The current context is where commands that call a
gateway go when neither --url nor MESHWORK_URL is given; without one, they go to the project's
dev mesh.

  meshwork context set prod --url https://mesh.example.com --token-env PROD_MESH_TOKEN
  meshwork context use prod
  meshwork status                 # prod's gateway, with $PROD_MESH_TOKEN

${FILE_HELP}`,
  subcommands: [set, use, list, del],
});
