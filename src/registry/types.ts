/**
 * The registry's data: service instances and applied configs, and the snapshot it publishes to
 * KV for gateways and services to route by.
 */
import { defaultEndpointName, endpointKey, parseEndpointKey, WORKER_ENDPOINT } from '../core/endpoint.ts';
import type { MeshBundle } from '../config/schema.ts';

export type Health = 'unknown' | 'healthy' | 'unhealthy';

/**
 * What a service (or an operator) tells the registry about one endpoint of a service version.
 * A wrapped worker's own heartbeat registers the endpoint "worker" of its version, which speaks
 * for that version's config endpoints; an operator (or the Kubernetes adapter) registers an
 * endpoint with its own binding or URL.
 */
export interface InstanceInfo {
  service: string;
  version?: string;
  /** Endpoint name; default "worker" for a heartbeat, else from the binding or URL. */
  endpoint?: string;
  /** How to reach it (not for a heartbeat: its version's config endpoints say that). */
  binding?: string;
  url?: string;
  weight?: number;
  /** Path probed for health (default /_mesh/health). */
  healthPath?: string;
  metadata?: Record<string, string>;
}

export interface Instance extends InstanceInfo {
  /** The endpoint key: "<service>@<version>/<endpoint>" (core/endpoint.ts). */
  id: string;
  endpoint: string;
  registeredAt: number;
  lastHeartbeat: number;
  /** active: heartbeating; expired: no heartbeat within the TTL (kept, visible, out of rotation). */
  status: 'active' | 'expired';
  health: Health;
  lastProbe?: { at: number; ok: boolean; detail: string };
  source: 'self' | 'admin';
}

/**
 * The endpoint name an instance gets when it names none: from its binding or URL, as a config
 * backend's; without either it is the version's worker record (what a heartbeat registers).
 */
export function instanceEndpoint(info: InstanceInfo): string {
  if (info.endpoint !== undefined) return info.endpoint;
  if (info.binding !== undefined || info.url !== undefined) return defaultEndpointName(info);
  return WORKER_ENDPOINT;
}

export function instanceKey(info: InstanceInfo): string {
  return endpointKey({ service: info.service, version: info.version, endpoint: instanceEndpoint(info) });
}

/**
 * A record as an earlier meshwork wrote it (keyed "service@version", no endpoint), in today's
 * form: a self-registered one is its version's worker record, an operator's is the endpoint its
 * binding or URL names (or the worker record without either). Both the registry's stored state
 * and snapshots still in KV from before an upgrade are read through this.
 */
export function upgradeInstance(inst: Instance): Instance {
  if (inst.endpoint !== undefined && parseEndpointKey(inst.id)) return inst;
  const endpoint = inst.endpoint ?? (inst.source === 'self' ? WORKER_ENDPOINT : instanceEndpoint(inst));
  return { ...inst, id: endpointKey({ service: inst.service, version: inst.version, endpoint }), endpoint };
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

/** An applied config as the registry indexes it: everything but the bundle, which is stored apart. */
export interface ConfigEntry extends Omit<AppliedConfig, 'bundle'> {
  version: string;
  /** Size of the stored bundle (characters of its JSON), counted against the history's size bound. */
  bytes: number;
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

/**
 * What the registry itself says about the newest snapshot, asked over a channel only the mesh's
 * own workers have (the gateway's Durable Object binding, or the RegistryHeartbeat entrypoint):
 * KV can be written by any service, so a reader uses this to refuse a genuine but old snapshot
 * put back under the marker.
 */
export interface RegistryLatest {
  epoch: string;
  revision: number;
  /** The config in force came into force with the revision after this one. */
  configAfter: number;
  /** How long ago that was (ms, by the registry's clock). */
  configAgeMs: number;
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
