/**
 * Last stage: hand the request to the outbound call path (src/traffic), which picks the
 * endpoint, sets the mesh's headers (identity, user assertion, claims, trace) and streams the
 * answer back. The gateway adds what it alone knows: the config version and the RateLimit fields.
 */
import { carriesAudience } from '../../auth/admin-token.ts';
import { CONFIG_VERSION_HEADER, FALLBACK_HEADER, REQUEST_ID_HEADER, withHeaders } from '../../core/headers.ts';
import type { FallbackSpec, MirrorSpec } from '../../config/schema.ts';
import { errorText, logEvent } from '../../core/log.ts';
import { callService, type OutboundCall } from '../../traffic/index.ts';
import { applyHeaderOps } from '../../traffic/policy.ts';
import type { GatewayContext, Stage } from '../context.ts';

/** Largest body copied to a mirror (read once, then sent to both). */
const MIRROR_BODY_LIMIT = 64 * 1024;

/** A fresh call to `service` with the same request: nothing of the first call's progress. */
function sameRequestTo(call: OutboundCall, service: string, version: string | undefined): OutboundCall {
  return {
    ...call,
    service,
    version,
    target: undefined,
    endpoint: undefined,
    upstream: undefined,
    request: undefined,
    tried: undefined,
    noAnswer: undefined,
    noEndpoint: undefined,
    unreachable: undefined,
    timedOut: undefined,
    deadlineAt: undefined,
    abort: undefined,
    stickyUnit: undefined,
  };
}

/**
 * Starts the mirror's copy in the background (its answer is read and dropped), when the request
 * has no body or one that fits MIRROR_BODY_LIMIT, which is then read once for both calls.
 */
async function mirror(ctx: GatewayContext, call: OutboundCall, spec: MirrorSpec): Promise<void> {
  if (Math.random() * 100 >= spec.percent) return;
  const request = ctx.request;
  if (request.body !== null && request.method !== 'GET' && request.method !== 'HEAD') {
    const length = Number(request.headers.get('content-length') ?? Number.NaN);
    if (!Number.isFinite(length) || length > MIRROR_BODY_LIMIT) return;
    call.body ??= await request.arrayBuffer();
  }
  const copy = callService(sameRequestTo(call, spec.service, spec.version)).then(
    (r) => r.body?.cancel(),
    (e: unknown) =>
      logEvent('warn', 'mirror failed', { requestId: call.requestId, service: spec.service, error: errorText(e) }),
  );
  ctx.io.waitUntil(copy);
}

/** The route's fallback, when no backend answered; undefined to keep the answer as it is. */
async function fallbackFor(call: OutboundCall, fallback: FallbackSpec): Promise<Response | undefined> {
  if ('status' in fallback) {
    const noBody = fallback.status === 204 || fallback.status === 205 || fallback.status === 304;
    return new Response(noBody ? null : fallback.body, {
      status: fallback.status,
      headers: {
        'content-type': fallback.contentType,
        [REQUEST_ID_HEADER]: call.requestId,
        [FALLBACK_HEADER]: 'static',
      },
    });
  }
  // The client's body went to the first call unless it was kept for retries.
  const source = call.source;
  if (source.kind === 'edge' && source.request.bodyUsed && call.body === undefined) return undefined;
  const response = await callService(sameRequestTo(call, fallback.service, fallback.version));
  return withHeaders(response, [[FALLBACK_HEADER, fallback.service]], 'set');
}

export const forward: Stage = async (ctx) => {
  const { request, url } = ctx;
  const route = ctx.hit!.route;
  const { adminAudience } = ctx.plan;
  const call: OutboundCall = {
    service: ctx.target!.service,
    version: ctx.target!.version,
    pathAndQuery: ctx.upstreamPath! + url.search,
    source: {
      kind: 'edge',
      request,
      url,
      clientIp: ctx.clientIp,
      route: ctx.target!.edge ?? route.edge,
      dropAuthorization:
        adminAudience !== undefined && carriesAudience(request.headers.get('authorization'), adminAudience),
    },
    requestId: ctx.requestId,
    trace: ctx.trace,
    user: ctx.user ? { verified: ctx.user } : undefined,
    ...(ctx.stickyUnit !== undefined ? { stickyUnit: ctx.stickyUnit } : {}),
    plan: ctx.plan,
    runtime: ctx.runtime,
    env: ctx.env,
    waitUntil: (p) => ctx.io.waitUntil(p),
  };
  ctx.call = call;
  if (route.mirror) await mirror(ctx, call, route.mirror);
  let response = await callService(call);
  if (route.fallback && call.noAnswer) {
    const fallback = await fallbackFor(call, route.fallback);
    if (fallback) {
      void response.body?.cancel().catch(() => {});
      response = fallback;
    }
  }
  const answer = withHeaders(response, [[CONFIG_VERSION_HEADER, ctx.plan.version]], 'set');
  // The edge response is the gateway's own copy (relay layer): its headers may be edited.
  const responseOps = ctx.target!.responseHeaders ?? route.responseHeaders;
  if (responseOps) applyHeaderOps(answer.headers, responseOps);
  // append: a service's own RateLimit fields (east-west limits) stay, the gateway's join them.
  return ctx.responseHeaders ? withHeaders(answer, ctx.responseHeaders, 'append') : answer;
};
