/**
 * Every `meshwork` command, in the order `meshwork --help` lists them. To add one, write a module
 * in this directory that exports `defineCommand({ ... })` (command.ts), import it here and add
 * it to the list: that is the whole registration.
 */
import type { Command } from './command.ts';
import { context } from './context.ts';
import { apply, diff, history, rollback, status } from './control.ts';
import { keys, token, validate } from './local.ts';
import { metrics, top } from './observe.ts';
import { add, build, deploy, dev, init } from './project.ts';

export const COMMANDS: readonly Command[] = [
  init,
  add,
  dev,
  build,
  deploy,
  validate,
  apply,
  diff,
  history,
  rollback,
  status,
  metrics,
  top,
  context,
  token,
  keys,
];
