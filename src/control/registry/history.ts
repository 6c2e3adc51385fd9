/**
 * Applied configs, their order, and the audit log: pure functions of the registry state, so the
 * rules (what "previous" means, what a rollback may target) are tested without the object.
 */
import type { MeshBundle } from '../../config/schema.ts';
import type { AuditEntry } from '../../registry/types.ts';
import type { RegistryState } from './state.ts';

export const MAX_HISTORY = 50;
export const MAX_AUDIT = 500;

/** The config in force: the head revision, or the bundled routes/ (revision 0). */
export function activeBundle(s: RegistryState, bundled: MeshBundle): MeshBundle {
  return s.configs.find((c) => c.revision === s.head)?.bundle ?? bundled;
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

function setHead(s: RegistryState, revision: number): void {
  s.head = revision;
  s.heads.push(revision);
  if (s.heads.length > MAX_HISTORY * 2) s.heads.splice(0, s.heads.length - MAX_HISTORY * 2);
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
  if (activeBundle(s, bundled).version === bundle.version)
    return { revision: s.head, version: bundle.version, unchanged: true };
  const revision = Math.max(0, ...s.configs.map((c) => c.revision)) + 1;
  s.configs.push({ revision, bundle, appliedAt: now, appliedBy: actor, ...(message ? { message } : {}) });
  if (s.configs.length > MAX_HISTORY) s.configs.splice(0, s.configs.length - MAX_HISTORY);
  setHead(s, revision);
  audit(s, now, actor, 'apply', `config revision ${revision} (${bundle.version})${message ? `: ${message}` : ''}`);
  return { revision, version: bundle.version, unchanged: false };
}

/**
 * Back to an earlier config revision (default: the one in force before the current). Revision 0
 * is the bundled routes/. The rollback is itself a new entry in the audit log, not a rewrite of
 * history.
 */
export function rollback(
  s: RegistryState,
  bundled: MeshBundle,
  target: number | undefined,
  actor: string,
  now: number,
): { revision: number; version: string } | { error: string } {
  const known = [0, ...s.configs.map((c) => c.revision)];
  const to = target ?? [...s.heads].reverse().find((r) => r !== s.head && known.includes(r));
  if (to === undefined) return { error: 'there is no earlier config to roll back to' };
  if (!known.includes(to)) return { error: `config revision ${to} is not in the history (have: ${known.join(', ')})` };
  if (to === s.head) return { error: `config revision ${to} is already in force` };
  setHead(s, to);
  const version = activeBundle(s, bundled).version;
  audit(s, now, actor, 'rollback', `config back to revision ${to} (${version})`);
  return { revision: to, version };
}
