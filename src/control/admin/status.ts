/**
 * GET status: every service's endpoints with what decides their rotation. Rotation comes from
 * the same overlay the gateways route by (registry/overlay.ts): what status says is what happens.
 */
import type { Hono } from 'hono';
import { compilePlan } from '../../plan/compile.ts';
import { errorText } from '../../core/log.ts';
import { endpointViews } from '../../registry/overlay.ts';
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
    let plan: ReturnType<typeof compilePlan> | undefined;
    let configError: string | undefined;
    try {
      plan = compilePlan(active.bundle);
    } catch (e) {
      // A config applied by an earlier meshwork that today's schema refuses: its records still show.
      configError = `the config in force (${active.bundle.version}) does not pass the current schema: ${errorText(e)}`;
    }
    const shown = new Set<string>();
    const rotating = new Set<string>();
    const services: Array<{ name: string; endpoints: EndpointRow[] }> = [];
    for (const svc of plan?.services.values() ?? []) {
      const endpoints = endpointViews(svc, instances).map((v) => {
        if (v.record) shown.add(v.record.id);
        if (v.record && v.inRotation) rotating.add(v.record.id);
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
      ...(configError ? { configError } : {}),
      services,
      // A record is in rotation when an endpoint it speaks for takes traffic.
      instances: instances.map((i) => ({ ...i, inRotation: rotating.has(i.id) })),
    });
  });
}
