/**
 * The registry's data: service instances and applied configs, and the snapshot it publishes to
 * KV for gateways and services to route by.
 */
import type { MeshBundle } from '../config/schema.ts';

export type Health = 'unknown' | 'healthy' | 'unhealthy';

/** What a service (or an operator) tells the registry about one deployment of a service. */
export interface InstanceInfo {
  service: string;
  version?: string;
  /** How to reach it, when the config has no backend for this service/version. */
  binding?: string;
  url?: string;
  weight?: number;
  /** Path probed for health (default /_mesh/health). */
  healthPath?: string;
  metadata?: Record<string, string>;
}

export interface Instance extends InstanceInfo {
  /** service@version (or the service name when unversioned). */
  id: string;
  registeredAt: number;
  lastHeartbeat: number;
  /** active: heartbeating; expired: no heartbeat within the TTL (kept, visible, out of rotation). */
  status: 'active' | 'expired';
  health: Health;
  lastProbe?: { at: number; ok: boolean; detail: string };
  source: 'self' | 'admin';
}

export interface AuditEntry {
  at: number;
  actor: string;
  action: 'apply' | 'rollback' | 'register' | 'deregister' | 'expire' | 'health';
  detail: string;
  revision: number;
}

/** An applied config, kept for rollback. Revision 0 is the bundled routes/ (nothing applied). */
export interface AppliedConfig {
  revision: number;
  bundle: MeshBundle;
  appliedAt: number;
  appliedBy: string;
  message?: string;
}

/** What the registry publishes to KV on every change. */
export interface Snapshot {
  /** Increases with every published change (config or instances). */
  revision: number;
  /** Identifies the registry's storage: revisions are compared within one epoch only. */
  epoch: string;
  /** Revision of the config in force (0 = the bundled routes/). */
  configRevision: number;
  /** The applied config, or null when the bundled one is in force. */
  bundle: MeshBundle | null;
  instances: Instance[];
  publishedAt: number;
}

/** The one registry object's name (idFromName). */
export const REGISTRY_NAME = 'registry';
/** Audience of the identity token a service presents with its heartbeat. */
export const REGISTRY_AUDIENCE = 'meshwork-registry';

/** The latest snapshot (for tools and people); isolates read the immutable per-revision key. */
export const SNAPSHOT_KEY = 'mesh:snapshot';

/** Each published snapshot under its own key, named by the marker "<epoch>:<revision>". */
export function snapshotKey(marker: string): string {
  return `${SNAPSHOT_KEY}:${marker}`;
}
/** Small key polled by every isolate ("<epoch>:<revision>"); the full snapshot is read only when it changes. */
export const SNAPSHOT_REVISION_KEY = 'mesh:snapshot:revision';

export function instanceId(service: string, version: string | undefined): string {
  return version ? `${service}@${version}` : service;
}
