/**
 * The mesh's metrics, summed across every isolate: one Durable Object (idFromName "telemetry"),
 * fed batches of deltas that each isolate sends about once a second after its responses
 * (telemetry/recorder.ts). Why a Durable Object and not Workers Analytics Engine: Prometheus
 * needs cumulative counters it can scrape, which one consistent object gives and Analytics
 * Engine (write-only from a worker, read through an SQL API with minutes of delay, absent under
 * workerd) does not; the object is also what the dashboard reads live. The totals changed by
 * batches are written to its storage every PERSIST_MS (an alarm, not a write per batch: every
 * isolate sends one a second), so they survive a restart of the gateway and of the object
 * (Prometheus then sees no counter reset); a crash of the object loses at most that long.
 *
 * Reached only by the gateway's own code: its binding (MESH_TELEMETRY) is the gateway's, and
 * services report through the Telemetry entrypoint, which checks who they are.
 */
import { DurableObject } from 'cloudflare:workers';
import { namespaceOf, type MeshBindings } from '../../core/bindings.ts';
import { Aggregate, type StoredTotal } from '../../telemetry/aggregate.ts';
import type { TelemetryBatch } from '../../telemetry/metrics.ts';
import type { TelemetryOverview } from '../../telemetry/overview.ts';
import type { MetricsSink } from '../../telemetry/recorder.ts';
import { renderPrometheus, type MetricNames } from '../../telemetry/prometheus.ts';

export const TELEMETRY_BINDING = 'MESH_TELEMETRY';
const OBJECT_NAME = 'telemetry';
/** Storage's limit of keys per put. */
const PUT_CHUNK = 128;
/** How often changed totals are written to storage. */
export const PERSIST_MS = 5_000;

export class MeshTelemetry extends DurableObject<MeshBindings> {
  #agg = new Aggregate(Date.now());

  constructor(ctx: DurableObjectState, env: MeshBindings) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      const stored = await ctx.storage.list<StoredTotal>();
      this.#agg.load(stored.values());
      // Changes not yet written when the object last stopped have an alarm waiting.
      this.#alarmSet = (await ctx.storage.getAlarm()) !== null;
    });
  }

  /** `source`: the service the Telemetry entrypoint verified; the gateway's own batches by default. */
  async ingest(batch: TelemetryBatch, source = 'gateway'): Promise<void> {
    this.#agg.apply(batch, Date.now(), source);
    if (!this.#alarmSet) {
      this.#alarmSet = true;
      await this.ctx.storage.setAlarm(Date.now() + PERSIST_MS);
    }
  }

  #alarmSet = false;

  override async alarm(): Promise<void> {
    this.#alarmSet = false;
    await this.persist();
  }

  /** Writes the changed totals now (the alarm's job; tests call it to see a restart keep them). */
  async persist(): Promise<void> {
    const dirty = this.#agg.takeDirty();
    for (let i = 0; i < dirty.length; i += PUT_CHUNK)
      await this.ctx.storage.put(Object.fromEntries(dirty.slice(i, i + PUT_CHUNK)));
  }

  overview(): TelemetryOverview {
    return this.#agg.overview(Date.now());
  }

  prometheus(names: MetricNames): string {
    return renderPrometheus(this.#agg, names);
  }
}

export function telemetryOf(env: MeshBindings): DurableObjectStub<MeshTelemetry> | undefined {
  const ns = namespaceOf<MeshTelemetry>(env, TELEMETRY_BINDING);
  return ns?.get(ns.idFromName(OBJECT_NAME));
}

/** The gateway's metrics sink: straight to the object (without its binding, metrics are not kept). */
export const objectSink: MetricsSink = {
  ready: (env) => namespaceOf(env as MeshBindings, TELEMETRY_BINDING) !== undefined,
  send: async (env, batch) => {
    await telemetryOf(env as MeshBindings)?.ingest(batch);
  },
};
