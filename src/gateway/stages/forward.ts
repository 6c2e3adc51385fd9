/**
 * Last stage: hand the request to the outbound call path (src/traffic), which picks the
 * endpoint, sets the mesh's headers (identity, user assertion, claims, trace) and streams the
 * answer back. The gateway adds what it alone knows: the config version and the RateLimit fields.
 */
import { carriesAudience } from '../../auth/admin-token.ts';
import { CONFIG_VERSION_HEADER, withHeaders } from '../../core/headers.ts';
import { callService } from '../../traffic/index.ts';
import { applyHeaderOps } from '../../traffic/policy.ts';
import type { Stage } from '../context.ts';

export const forward: Stage = async (ctx) => {
  const { request, url } = ctx;
  const route = ctx.hit!.route;
  const { adminAudience } = ctx.plan;
  const response = await callService({
    service: ctx.target!.service,
    version: ctx.target!.version,
    pathAndQuery: ctx.upstreamPath! + url.search,
    source: {
      kind: 'edge',
      request,
      url,
      clientIp: ctx.clientIp,
      route: route.edge,
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
  });
  const answer = withHeaders(response, [[CONFIG_VERSION_HEADER, ctx.plan.version]], 'set');
  // The edge response is the gateway's own copy (relay layer): its headers may be edited.
  if (route.responseHeaders) applyHeaderOps(answer.headers, route.responseHeaders);
  // append: a service's own RateLimit fields (east-west limits) stay, the gateway's join them.
  return ctx.responseHeaders ? withHeaders(answer, ctx.responseHeaders, 'append') : answer;
};
