/**
 * Cross-checks routes against a worker's wrangler config, at build time, so that a binding left
 * out shows up in the build's output instead of as 503s or silently missing features at run time.
 * Node only (reads the wrangler config with wrangler's own reader).
 *
 *  - missingGatewayBindings: every service binding that the gateway's routes can send traffic to.
 *  - serviceBindingProblems: every binding a service's withMesh wrapper needs to work fully.
 */
import type { MeshConfig } from '../../config/schema.ts';

export async function missingGatewayBindings(config: MeshConfig, wranglerConfigPath: string): Promise<string[]> {
  const { unstable_readConfig } = await import('wrangler');
  const declared = new Set(
    (unstable_readConfig({ config: wranglerConfigPath }).services ?? []).map((s: { binding: string }) => s.binding),
  );
  const routed = new Set(
    config.routes.flatMap((r) => (r.backendRefs ? r.backendRefs.map((b) => b.service) : [r.service!])),
  );
  const missing: string[] = [];
  for (const name of routed) {
    for (const b of config.services[name]?.backends ?? []) {
      if (b.binding && !declared.has(b.binding))
        missing.push(
          `service "${name}" backend binding ${b.binding} is not declared in ${wranglerConfigPath} ([[services]] binding = "${b.binding}")`,
        );
    }
  }
  return missing;
}

/** The gateway worker's name when none is given (the repo's wrangler.toml `name`). */
export const DEFAULT_GATEWAY_WORKER = 'meshwork-gateway';

/** The KV namespace with the registry's snapshots (src/registry/source.ts) and the shared key cache. */
const KV_BINDING = 'MESH_KV';
/** The registry's heartbeat entrypoint on the gateway (src/wrapper/heartbeat.ts, src/registry/source.ts). */
const REGISTRY_BINDING = 'MESH_REGISTRY';
/** The gateway's metrics entrypoint (src/wrapper/index.ts). */
const TELEMETRY_BINDING = 'MESH_TELEMETRY';

/** The named entrypoints the gateway exports for services (src/gateway/index.ts). */
const HEARTBEAT_ENTRYPOINT = 'RegistryHeartbeat';
const LIMITS_ENTRYPOINT = 'RateLimits';
const TELEMETRY_ENTRYPOINT = 'Telemetry';
const GATEWAY_ENTRYPOINTS = [HEARTBEAT_ENTRYPOINT, LIMITS_ENTRYPOINT, TELEMETRY_ENTRYPOINT];

/** The gateway's Durable Object classes: a service must never bind them (docs/security.md). */
const GATEWAY_OBJECT_CLASSES = new Set(['RateLimiter', 'MeshRegistry', 'MeshTelemetry']);

interface ServiceBindingDecl {
  binding: string;
  service: string;
  entrypoint?: string;
}

interface ObjectBindingDecl {
  name: string;
  class_name: string;
  script_name?: string;
}

/** One binding to the gateway the wrapper looks up by name, and what it is for. */
interface GatewayNeed {
  binding: string;
  entrypoint: string;
  /** What the service loses without it. */
  without: string;
}

/**
 * Who may call `target`, as the wrapper enforces it (src/wrapper/policies.ts): an identified caller
 * must be on its allowCallers when it has one (else 403 before anything else runs); without
 * allowCallers any mesh member may ("gateway" or any service, itself included).
 */
function admits(config: MeshConfig, target: string, caller: string): boolean {
  const allowed = config.services[target]?.policy.allowCallers;
  return allowed === undefined || allowed.includes(caller);
}

/**
 * Whether the wrapper of `service` ever asks the gateway's RateLimits entrypoint. It does so for a
 * call into the service (never for the calls it makes: a callee enforces its own limits, the
 * gateway enforces route limits itself) when one of the service's own policy.rateLimits applies
 * to that call (src/ratelimit/limiter.ts, Limiter.check): a policy without `callers` applies to
 * every call that got past allowCallers (anonymous ones included); a policy with `callers` only
 * to calls from those members, so it needs the binding only if one of them is admitted at all.
 * Judged on the config being built: a policy applied later (`meshwork apply`) needs it too.
 */
function usesRateLimits(config: MeshConfig, service: string): boolean {
  const own = config.services[service]!;
  const allowCallers = own.policy.allowCallers;
  return (own.policy.rateLimits ?? []).some((name) => {
    const callers = config.rateLimits[name]?.callers;
    if (allowCallers !== undefined && allowCallers.length === 0) return false; // nobody gets in
    if (callers === undefined) return true;
    return callers.some((c) => allowCallers === undefined || allowCallers.includes(c));
  });
}

function tomlServiceBinding(binding: string, service: string, entrypoint?: string): string {
  return [
    '[[services]]',
    `binding = "${binding}"`,
    `service = "${service}"`,
    ...(entrypoint ? [`entrypoint = "${entrypoint}"`] : []),
  ]
    .map((l) => `    ${l}`)
    .join('\n');
}

/**
 * What keeps `service`'s withMesh wrapper from working fully with the worker config at
 * `wranglerConfigPath`: one message per problem, naming the file, the binding and the TOML to add.
 * Empty when the config has everything. `gateway` is the gateway worker's name (its wrangler
 * `name`), which the entrypoint bindings point at.
 *
 * What the wrapper needs (src/wrapper/*.ts, src/core/bindings.ts):
 *  - MESH_KV, a KV namespace (the gateway's): without it the service never reads the registry's
 *    snapshots and silently serves only the routes/ it was built with, ignoring applied configs;
 *  - MESH_REGISTRY, the gateway's RegistryHeartbeat entrypoint: heartbeats (registration, health
 *    probes) and the registry's word on which snapshot is current;
 *  - rateLimitStore.binding (default MESH_RATE_LIMITER), the gateway's RateLimits entrypoint,
 *    when one of the service's own rate limits can apply to a call into it (usesRateLimits);
 *  - MESH_TELEMETRY, the gateway's Telemetry entrypoint, when observability.metrics is enabled;
 *  - the binding of each `binding` backend of every service it calls. A service S may call T when
 *    T's allowCallers lists S, or T has no allowCallers (src/plan/compile.ts, userAudiences): the
 *    wrapper's client (src/wrapper/client.ts) resolves T in the same config and sends over T's
 *    backend binding, so a binding missing in S is a 503 "not bound" for the share of calls that
 *    picks it. Which services S actually calls is in its code, not in the config, so:
 *      - T lists S in allowCallers: the config says S calls T, so every binding backend of T is
 *        required;
 *      - T has no allowCallers: S may call it, but need not (least privilege: a service holds only
 *        the bindings it uses, docs/security.md). Required only once S binds any of T's backends:
 *        then it calls T, and a backend it left out would fail its share of the calls.
 *    URL backends need no binding.
 * It also flags a binding to the gateway that names the wrong (or no) entrypoint or the wrong
 * worker, and a binding to the gateway's Durable Objects themselves, which no service may hold.
 * Secrets (identity.signingKey, identity.publicKeys) are not in a wrangler config: not checked.
 */
export async function serviceBindingProblems(
  config: MeshConfig,
  service: string,
  wranglerConfigPath: string,
  gateway: string = DEFAULT_GATEWAY_WORKER,
): Promise<string[]> {
  const file = wranglerConfigPath;
  if (!config.services[service])
    return [`${file}: service "${service}" is not defined in the mesh config (services.${service} in routes/)`];
  const { unstable_readConfig } = await import('wrangler');
  const worker = unstable_readConfig({ config: wranglerConfigPath });
  const services = (worker.services ?? []) as ServiceBindingDecl[];
  const kv = (worker.kv_namespaces ?? []) as Array<{ binding: string }>;
  const objects = (worker.durable_objects?.bindings ?? []) as ObjectBindingDecl[];
  const byName = new Map(services.map((s) => [s.binding, s]));
  const problems: string[] = [];

  // A binding to the gateway's Durable Objects: the wrapper cannot use it, and a compromised
  // service could spend any bucket, call the registry's control plane or forge metrics with it.
  for (const o of objects) {
    if (GATEWAY_OBJECT_CLASSES.has(o.class_name) && (o.script_name === undefined || o.script_name === gateway))
      problems.push(
        `${file}: [[durable_objects.bindings]] ${o.name} binds the gateway's ${o.class_name} Durable Object: a service must never hold it (docs/security.md); remove it and reach the gateway through its entrypoints only`,
      );
  }

  if (!kv.some((k) => k.binding === KV_BINDING))
    problems.push(
      `${file}: no KV namespace ${KV_BINDING}: ${service} never reads the registry's snapshots, so it silently ignores configs applied with \`meshwork apply\` and serves only the routes/ it was built with. Add the gateway's namespace (the same id as the gateway's ${KV_BINDING}):\n` +
        ['[[kv_namespaces]]', `binding = "${KV_BINDING}"`, `id = "<the id of the gateway's ${KV_BINDING}>"`]
          .map((l) => `    ${l}`)
          .join('\n'),
    );

  const needs: GatewayNeed[] = [
    {
      binding: REGISTRY_BINDING,
      entrypoint: HEARTBEAT_ENTRYPOINT,
      without: `${service} sends no heartbeats (it never registers, the registry neither lists nor probes it) and cannot ask the registry which snapshot is current`,
    },
  ];
  const limiterBinding = config.rateLimitStore.binding;
  if (usesRateLimits(config, service))
    needs.push({
      binding: limiterBinding,
      entrypoint: LIMITS_ENTRYPOINT,
      without: `${service}'s rate limits (services.${service}.policy.rateLimits) cannot be checked: every call counts as a store failure (admitted with onStoreFailure: open, refused with 503 with closed)`,
    });
  if (config.observability.metrics.enabled)
    needs.push({
      binding: TELEMETRY_BINDING,
      entrypoint: TELEMETRY_ENTRYPOINT,
      without: `observability.metrics is enabled, but ${service}'s calls are dropped from /_mesh/metrics and the dashboard`,
    });
  // The gateway bindings the wrapper knows, needed here or not: a wrong one is wrong either way.
  const known = new Map<string, string>([
    [REGISTRY_BINDING, HEARTBEAT_ENTRYPOINT],
    [limiterBinding, LIMITS_ENTRYPOINT],
    [TELEMETRY_BINDING, TELEMETRY_ENTRYPOINT],
  ]);

  for (const [binding, entrypoint] of known) {
    const decl = byName.get(binding);
    if (!decl) continue;
    const fix = `; it should be:\n${tomlServiceBinding(binding, gateway, entrypoint)}`;
    if (decl.service !== gateway)
      problems.push(
        `${file}: [[services]] ${binding} points at worker "${decl.service}", not the gateway "${gateway}"${fix}`,
      );
    else if (decl.entrypoint !== entrypoint)
      problems.push(
        `${file}: [[services]] ${binding} names ${decl.entrypoint === undefined ? "no entrypoint (the gateway's HTTP handler)" : `entrypoint "${decl.entrypoint}"`}, not the gateway's "${entrypoint}"${fix}`,
      );
  }
  for (const need of needs) {
    if (byName.has(need.binding)) continue;
    const elsewhere = services.find((s) => s.service === gateway && s.entrypoint === need.entrypoint);
    problems.push(
      `${file}: no service binding ${need.binding} to the gateway's ${need.entrypoint} entrypoint: ${need.without}.${elsewhere ? ` (It is bound as ${elsewhere.binding}; the wrapper looks for ${need.binding}.)` : ''} Add:\n${tomlServiceBinding(need.binding, gateway, need.entrypoint)}`,
    );
  }
  // Other bindings to the gateway: any entrypoint they name must be one it exports.
  for (const decl of services) {
    if (decl.service !== gateway || known.has(decl.binding) || decl.entrypoint === undefined) continue;
    if (!GATEWAY_ENTRYPOINTS.includes(decl.entrypoint))
      problems.push(
        `${file}: [[services]] ${decl.binding} names entrypoint "${decl.entrypoint}", which the gateway "${gateway}" does not export (it exports ${GATEWAY_ENTRYPOINTS.join(', ')} for services)`,
      );
  }

  for (const [target, spec] of Object.entries(config.services)) {
    if (!admits(config, target, service)) continue;
    const bindings = spec.backends.flatMap((b) => (b.binding === undefined ? [] : [b]));
    const unbound = bindings.filter((b) => !byName.has(b.binding!));
    if (unbound.length === 0) continue;
    const listed = spec.policy.allowCallers !== undefined;
    // Unrestricted and none of its backends bound: this service does not call it (see above).
    if (!listed && unbound.length === bindings.length) continue;
    const why = listed
      ? `services.${target}.policy.allowCallers lists ${service}`
      : `${service} binds other backends of ${target}, so it calls it`;
    for (const b of unbound) {
      const which = b.version === undefined ? '' : ` (version ${b.version})`;
      problems.push(
        `${file}: no service binding ${b.binding} for a backend of "${target}"${which}: ${why}, so each call from ${service} to ${target} that picks this backend gets a 503 (not bound). Add:\n${tomlServiceBinding(b.binding!, `<the worker serving ${target}${which}>`)}`,
      );
    }
  }
  return problems;
}
