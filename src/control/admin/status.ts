/**
 * GET status: every service's endpoints with what decides their rotation. Rotation comes from
 * the same overlay the gateways route by (registry/overlay.ts): what status says is what happens.
 */
import type { Hono } from 'hono';
import { compilePlan } from '../../plan/compile.ts';
import { endpointViews, inRotation } from '../../registry/overlay.ts';
import type { Instance } from '../../registry/types.ts';
import type { MeshRegistry } from '../registry/object.ts';
import { activeConfig } from './config.ts';
import type { AdminContext, AdminEnv } from './context.ts';

export interface EndpointRow {
  endpoint: string;
  version: string | null;
  target: string;
  weight: number;
  inRotation: boolean;
  registered: boolean;
  /** The record's status, or "static" for a config endpoint nothing has registered for. */
  status: string;
  health: string;
  lastHeartbeat: string | null;
}

function row(
  endpoint: string,
  version: string | undefined,
  target: string,
  weight: number,
  rotation: boolean,
  record: Instance | undefined,
): EndpointRow {
  return {
    endpoint,
    version: version ?? null,
    target,
    weight,
    inRotation: rotation,
    registered: Boolean(record),
    status: record?.status ?? 'static',
    health: record?.health ?? 'unknown',
    lastHeartbeat: record ? new Date(record.lastHeartbeat).toISOString() : null,
  };
}

export function statusRoutes(
  app: Hono<AdminEnv>,
  registry: (c: AdminContext) => DurableObjectStub<MeshRegistry>,
): void {
  app.get('/status', async (c) => {
    const reg = registry(c);
    const [status, active] = await Promise.all([reg.status(), activeConfig(reg)]);
    const instances = status.instances as Instance[];
    const plan = compilePlan(active.bundle);
    const shown = new Set<string>();
    const services: Array<{ name: string; endpoints: EndpointRow[] }> = [];
    for (const svc of plan.services.values()) {
      const endpoints = endpointViews(svc, instances).map((v) => {
        if (v.record) shown.add(v.record.id);
        const e = v.endpoint;
        const target = e.kind === 'binding' ? `binding ${e.binding}` : `url ${e.url.href}`;
        return row(e.key, e.version, target, v.weight, v.inRotation, v.record);
      });
      services.push({ name: svc.name, endpoints });
    }
    // Records that route nothing: a service the config does not have, or a version's worker
    // record with no config endpoint to speak for.
    for (const inst of instances) {
      if (shown.has(inst.id)) continue;
      const target = inst.binding ? `binding ${inst.binding}` : inst.url ? `url ${inst.url}` : '(none)';
      const r = row(inst.id, inst.version, target, inst.weight ?? 1, false, inst);
      r.inRotation = false;
      const svc = services.find((s) => s.name === inst.service);
      if (svc) svc.endpoints.push(r);
      else services.push({ name: inst.service, endpoints: [r] });
    }
    return c.json({
      revision: status.revision,
      configRevision: status.configRevision,
      configVersion: status.configVersion,
      services,
      instances: instances.map((i) => ({ ...i, inRotation: inRotation(i) })),
    });
  });
}
