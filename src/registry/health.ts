/**
 * GET /_mesh/health, as the gateway and every wrapped service answer it (the registry's probes
 * call it): whether this worker can do its job, what config this isolate serves, and its
 * counters. No identity needed, and nothing about callers revealed.
 *
 * Besides the config, health checks the worker's own setup: its signing key, the members'
 * public keys, and the bindings it needs (MESH_KV; a service's MESH_REGISTRY; the gateway's
 * registry object). Each problem found is listed with what is wrong and what to do, and the
 * status says what a load balancer or the registry's prober should make of it:
 *
 *   200 "ok"        nothing found.
 *   200 "degraded"  the worker serves, but not as configured (say, without MESH_KV it routes by
 *                   the routes/ bundled at deploy forever): keep it in rotation, fix the setup.
 *   503 "degraded"  requests to it cannot succeed (no usable signing key; a service that cannot
 *                   read the public keys verifies no caller): take it out of rotation. The
 *                   registry's prober counts any non-2xx answer as unhealthy.
 *
 * The checks run once per env object and identity config (so once per isolate), never per
 * request, and each problem is logged once per isolate on the first request that finds it.
 */
import { textOf, entrypointOf, kvOf, namespaceOf, type MeshBindings } from '../core/bindings.ts';
import { KeysUnavailable } from '../core/keys.ts';
import { errorText, logEvent } from '../core/log.ts';
import type { IdentitySpec } from '../config/schema.ts';
import type { MeshSigner } from '../identity/keys.ts';
import type { MeshRuntime } from '../runtime/runtime.ts';
import type { Served } from './source.ts';

export const HEALTH_PATH = '/_mesh/health';

/** The member name of the gateway's key (kid "gateway.<id>"). */
const GATEWAY = 'gateway';

export interface HealthProblem {
  /** Stable: signing_key_missing, signing_key_invalid, signing_key_wrong_member, public_keys_missing, public_keys_invalid, public_keys_lack_own_key, kv_missing, registry_missing. */
  code: string;
  /** What is wrong, what it breaks, and what to do. */
  message: string;
}

export interface HealthFindings {
  problems: HealthProblem[];
  /** Requests to this worker cannot succeed: health answers 503. */
  fatal: boolean;
}

/** Which worker is checked: the checks and their consequences differ. */
export interface HealthSubject {
  /** "gateway", or the service's name (its member name in the mesh keys). */
  member: string;
  /** Follows the registry: reads snapshots from KV (and, a service, heartbeats). False: a fixed config. */
  live: boolean;
}

const LOCAL_FIX = 'Locally: run `npx meshwork dev` once, it writes .dev.vars.';

function signingFix(name: string, member: string): string {
  return (
    `${LOCAL_FIX} In production: \`npx wrangler secret put ${name} -c <this worker's wrangler config>\` ` +
    `(keys from \`npx meshwork keys generate --member ${member}\`).`
  );
}

function publicKeysFix(name: string): string {
  return (
    `${LOCAL_FIX} In production: \`npx wrangler secret put ${name} -c <this worker's wrangler config>\` with ` +
    'every member\'s public JWK in one JWKS ({ "keys": [...] }, from `npx meshwork keys generate`), ' +
    'or list them inline as identity.publicKeys in routes/.'
  );
}

/** The checks themselves: the same key loading the request path uses (identity/keys.ts). */
async function findProblems(
  subject: HealthSubject,
  env: MeshBindings,
  identity: IdentitySpec,
  runtime: MeshRuntime,
): Promise<HealthFindings> {
  const problems: HealthProblem[] = [];
  let fatal = false;
  const isGateway = subject.member === GATEWAY;
  const keys = runtime.identity(identity).keys;

  // This worker's signing key: without it, it can prove nothing about itself.
  const signingEnv = identity.signingKey.env;
  const unsigned = isGateway
    ? 'every request it forwards fails (500 internal) and it cannot sign registry snapshots'
    : 'it cannot register with the registry, call other members or reach its rate limits';
  let signer: MeshSigner | undefined;
  if (textOf(env, signingEnv) === undefined) {
    fatal = true;
    problems.push({
      code: 'signing_key_missing',
      message: `env ${signingEnv} (this worker's mesh signing key) is not set: ${unsigned}. ${signingFix(signingEnv, subject.member)}`,
    });
  } else {
    try {
      signer = await keys.signer(env);
    } catch (e) {
      fatal = true;
      const what = e instanceof KeysUnavailable ? e.message : `env ${signingEnv} is not a usable key (${errorText(e)})`;
      problems.push({
        code: 'signing_key_invalid',
        message: `${what}: ${unsigned}. ${signingFix(signingEnv, subject.member)}`,
      });
    }
    if (signer && signer.member !== subject.member) {
      fatal = true;
      problems.push({
        code: 'signing_key_wrong_member',
        message:
          `env ${signingEnv} holds member "${signer.member}"'s key (kid ${signer.kid}), but this worker is ` +
          `${isGateway ? 'the gateway' : `service "${subject.member}"`}: other members take its calls for ` +
          `"${signer.member}"'s, and ${unsigned}. ${signingFix(signingEnv, subject.member)}`,
      });
      signer = undefined;
    }
  }

  // Every member's public keys: what this worker verifies tokens (a service: every caller's)
  // and snapshots with. Looked up with the very resolver verification uses.
  const publicEnv = 'env' in identity.publicKeys ? identity.publicKeys.env : undefined;
  const unverified = isGateway
    ? "it cannot verify the registry's snapshots (it routes by the routes/ bundled at deploy) nor services' heartbeats, rate-limit and metrics calls"
    : 'it cannot verify any caller: every request through the mesh answers 503 auth_unavailable';
  try {
    await keys.publicKeys(
      { alg: signer?.alg ?? 'EdDSA', kid: signer?.kid ?? 'meshwork-health-check' },
      { env, waitUntil: () => undefined },
    );
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') {
      if (signer && code === 'ERR_JWKS_NO_MATCHING_KEY') {
        problems.push({
          code: 'public_keys_lack_own_key',
          message:
            `${publicEnv ? `env ${publicEnv}` : 'identity.publicKeys'} has no key "${signer.kid}" (this worker's ` +
            `signing key): members with the same set refuse its tokens${isGateway ? ' and its snapshots' : ''}. ` +
            `Add its public JWK (printed with the private one by \`npx meshwork keys generate\`) to every worker's set.`,
        });
      }
    } else {
      if (!isGateway) fatal = true;
      const missing = publicEnv !== undefined && textOf(env, publicEnv) === undefined;
      const fix = publicEnv ? publicKeysFix(publicEnv) : 'Fix identity.publicKeys in routes/.';
      problems.push(
        missing
          ? {
              code: 'public_keys_missing',
              message: `env ${publicEnv} (every member's public keys) is not set: ${unverified}. ${fix}`,
            }
          : {
              code: 'public_keys_invalid',
              message: `${e instanceof KeysUnavailable ? e.message : `the mesh public keys are not a usable JWKS (${errorText(e)})`}: ${unverified}. ${fix}`,
            },
      );
    }
  }

  // The shared KV namespace.
  if (!kvOf(env) && (isGateway || subject.live)) {
    problems.push({
      code: 'kv_missing',
      message: isGateway
        ? 'MESH_KV (the KV namespace every worker shares) is not bound: the registry cannot publish snapshots, so ' +
          `applied configs and registry changes reach no worker${subject.live ? ' (this gateway routes by the routes/ bundled at deploy)' : ''}, ` +
          'and remote JWKS are cached per isolate only. Bind it in wrangler.toml ([[kv_namespaces]] binding = "MESH_KV", ' +
          'the id from `npx wrangler kv namespace create MESH_KV`).'
        : 'MESH_KV (the KV namespace every worker shares) is not bound: this service never sees an applied config ' +
          "or the registry's instances, and routes by the routes/ bundled at deploy. Bind the gateway's namespace in " +
          'its wrangler config ([[kv_namespaces]] binding = "MESH_KV", the same id as the gateway\'s).',
    });
  }

  // The registry: the gateway hosts it; a service heartbeats to it.
  if (isGateway && !namespaceOf(env, 'MESH_REGISTRY')) {
    problems.push({
      code: 'registry_missing',
      message:
        'MESH_REGISTRY (the MeshRegistry Durable Object namespace) is not bound: the admin API (meshwork apply, ' +
        'status, rollback) fails and services cannot register. Bind it in wrangler.toml ' +
        '([[durable_objects.bindings]] name = "MESH_REGISTRY", class_name = "MeshRegistry").',
    });
  } else if (!isGateway && subject.live && !entrypointOf(env, 'MESH_REGISTRY', 'heartbeat')) {
    problems.push({
      code: 'registry_missing',
      message:
        "MESH_REGISTRY (the gateway's RegistryHeartbeat entrypoint) is not bound: this service never registers " +
        '(meshwork status does not list it and the registry never probes it) and its new isolates cannot check ' +
        'snapshots with the registry. Add to its wrangler config: [[services]] binding = "MESH_REGISTRY", ' +
        'service = "meshwork-gateway", entrypoint = "RegistryHeartbeat".',
    });
  }
  return { problems, fatal };
}

/** One worker's health checks, kept per isolate: create one per gateway app / withMesh. */
export class WorkerHealth {
  readonly #checked = new WeakMap<object, { identity: IdentitySpec; findings: Promise<HealthFindings> }>();
  /** Problems already logged by this isolate. */
  readonly #logged = new Set<string>();

  constructor(
    readonly subject: HealthSubject,
    readonly runtime: MeshRuntime,
  ) {}

  /** The findings for this env and identity config, computed on first use. */
  findings(env: MeshBindings, identity: IdentitySpec): Promise<HealthFindings> {
    return this.#entry(env, identity).findings;
  }

  /**
   * On the request path: starts the checks the first time this env (or identity config) is
   * seen, in the background, so a misconfigured worker says what to fix in its logs (wrangler
   * tail, the dev console) on its first request. Otherwise one WeakMap lookup.
   */
  notice(env: MeshBindings, identity: IdentitySpec, waitUntil: (p: Promise<unknown>) => void): void {
    const known = this.#checked.get(env);
    if (known?.identity === identity) return;
    waitUntil(this.#entry(env, identity).findings);
  }

  /** The /_mesh/health answer. */
  async response(
    served: Served,
    env: MeshBindings,
    identity: IdentitySpec,
    extra: Record<string, unknown> = {},
  ): Promise<Response> {
    return healthResponse(served, this.runtime, extra, await this.findings(env, identity));
  }

  #entry(env: MeshBindings, identity: IdentitySpec): { identity: IdentitySpec; findings: Promise<HealthFindings> } {
    const known = this.#checked.get(env);
    if (known?.identity === identity) return known;
    const findings = findProblems(this.subject, env, identity, this.runtime).then(
      (found) => {
        for (const p of found.problems) {
          if (this.#logged.has(p.message)) continue;
          this.#logged.add(p.message);
          logEvent('warn', p.message, { code: p.code, member: this.subject.member });
        }
        return found;
      },
      (e: unknown): HealthFindings => {
        // A check that broke (a bug, not a finding) must not take the worker out of rotation.
        logEvent('warn', 'health checks failed', { member: this.subject.member, error: errorText(e) });
        return { problems: [], fatal: false };
      },
    );
    const entry = { identity, findings };
    this.#checked.set(env, entry);
    return entry;
  }
}

export function healthResponse(
  served: Served,
  runtime: MeshRuntime,
  extra: Record<string, unknown> = {},
  findings: HealthFindings = { problems: [], fatal: false },
): Response {
  const { plan, revision, configRevision } = served;
  const degraded = findings.problems.length > 0;
  return Response.json(
    {
      status: degraded ? 'degraded' : 'ok',
      ...extra,
      // Only when there is something to fix; each { code, message }.
      ...(degraded ? { problems: findings.problems } : {}),
      config: {
        version: plan.version,
        routes: plan.router.size,
        services: plan.services.size,
        revision: configRevision,
        snapshot: revision,
      },
      // Counted per isolate since it started.
      rateLimitStoreFailures: { ...runtime.limiter.storeFailures },
      rejected: { ...runtime.counters },
      // Spans dropped (collector down or queue full) and metric flushes that failed (kept for the next).
      telemetryLost: { ...runtime.telemetry.lost },
    },
    // 503 only when requests to this worker cannot succeed (see the top of this file).
    { status: findings.fatal ? 503 : 200, headers: { 'cache-control': 'no-store' } },
  );
}
