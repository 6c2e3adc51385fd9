/**
 * Applied configs, their order, and the audit log: pure functions of the registry state, so the
 * rules (what "previous" means, what a rollback may target, what the history may hold) are
 * tested without the object.
 */
import type { MeshBundle } from '../../config/schema.ts';
import type { AuditEntry } from '../../registry/types.ts';
import { bundleBytes, type RegistryState } from './state.ts';

export const MAX_HISTORY = 50;
/** The applied configs kept, in bytes of their bundles: a few large configs cannot fill storage. */
export const MAX_HISTORY_BYTES = 32 * 1024 * 1024;
export const MAX_AUDIT = 500;

/** The config in force: the head revision's bundle (held in memory), or the bundled routes/ (revision 0). */
export function activeBundle(s: RegistryState, bundled: MeshBundle): MeshBundle {
  if (s.head === 0) return bundled;
  const bundle = s.bundles.get(s.head);
  if (!bundle) throw new Error(`config revision ${s.head} is in force but not loaded`);
  return bundle;
}

/** Every audited event is part of a change about to be made: it carries that change's revision. */
export function audit(
  s: RegistryState,
  now: number,
  actor: string,
  action: AuditEntry['action'],
  detail: string,
): void {
  s.audit.push({ at: now, actor, action, detail, revision: s.revision + 1 });
  if (s.audit.length > MAX_AUDIT) s.audit.splice(0, s.audit.length - MAX_AUDIT);
}

function setHead(s: RegistryState, revision: number, now: number): void {
  s.head = revision;
  // The change being made is published as the next revision.
  s.configSince = { after: s.revision, at: now };
  s.heads.push(revision);
  if (s.heads.length > MAX_HISTORY * 2) s.heads.splice(0, s.heads.length - MAX_HISTORY * 2);
}

/** Drops the oldest configs (never the one in force) while the history is over its bounds. */
function trim(s: RegistryState): void {
  const total = () => s.configs.reduce((n, c) => n + c.bytes, 0);
  while (s.configs.length > MAX_HISTORY || (s.configs.length > 1 && total() > MAX_HISTORY_BYTES)) {
    const i = s.configs.findIndex((c) => c.revision !== s.head);
    if (i < 0) break;
    s.bundles.delete(s.configs[i]!.revision);
    s.configs.splice(i, 1);
  }
}

export type ApplyResult = { revision: number; version: string; unchanged: boolean };

export function applyConfig(
  s: RegistryState,
  bundled: MeshBundle,
  bundle: MeshBundle,
  actor: string,
  message: string | undefined,
  now: number,
): ApplyResult {
  const live = s.head === 0 ? bundled.version : s.configs.find((c) => c.revision === s.head)?.version;
  if (live === bundle.version) return { revision: s.head, version: bundle.version, unchanged: true };
  const revision = Math.max(0, ...s.configs.map((c) => c.revision)) + 1;
  s.configs.push({
    revision,
    version: bundle.version,
    appliedAt: now,
    appliedBy: actor,
    bytes: bundleBytes(bundle),
    ...(message ? { message } : {}),
  });
  s.bundles.set(revision, bundle);
  setHead(s, revision, now);
  trim(s);
  audit(s, now, actor, 'apply', `config revision ${revision} (${bundle.version})${message ? `: ${message}` : ''}`);
  return { revision, version: bundle.version, unchanged: false };
}

/** The revision a rollback goes to (default: the one in force before the current), or why none. */
export function rollbackTarget(s: RegistryState, target: number | undefined): number | { error: string } {
  const known = [0, ...s.configs.map((c) => c.revision)];
  const to = target ?? [...s.heads].reverse().find((r) => r !== s.head && known.includes(r));
  if (to === undefined) return { error: 'there is no earlier config to roll back to' };
  if (!known.includes(to)) return { error: `config revision ${to} is not in the history (have: ${known.join(', ')})` };
  if (to === s.head) return { error: `config revision ${to} is already in force` };
  return to;
}

/**
 * Back to an earlier config revision, whose bundle the caller has loaded into `s.bundles`.
 * Revision 0 is the bundled routes/. The rollback is itself a new entry in the audit log, not a
 * rewrite of history.
 */
export function rollback(
  s: RegistryState,
  bundled: MeshBundle,
  to: number,
  actor: string,
  now: number,
): { revision: number; version: string } {
  setHead(s, to, now);
  const version = activeBundle(s, bundled).version;
  audit(s, now, actor, 'rollback', `config back to revision ${to} (${version})`);
  return { revision: to, version };
}
