/** Last stage: send the request to the chosen backend and stream its response back. */
import { errorResponse } from '../../mesh/errors.ts';
import { CALLER_HEADER, REQUEST_ID_HEADER, ROUTE_HEADER, setForwarded } from '../../mesh/headers.ts';
import { setTraceHeaders } from '../../mesh/trace.ts';
import { logEvent, relayResponse, upstreamFor, upstreamRequest, upstreamUrl } from '../../mesh/upstream.ts';
import type { Stage } from '../context.ts';

export const forward: Stage = async (ctx) => {
  const { request, url, backend, requestId } = ctx;
  const route = ctx.hit!.route;
  const upstream = upstreamFor(ctx.env, backend!);
  if (!upstream) {
    logEvent('error', 'binding missing', { requestId, route: route.name, backend: backend!.label });
    return errorResponse(503, 'no_backend', `backend ${backend!.label} is not bound in the gateway`, requestId);
  }
  const outbound = upstreamRequest(upstreamUrl(backend!, url.origin, ctx.upstreamPath! + url.search), request);
  const headers = outbound.headers;
  setForwarded(headers, url, ctx.clientIp);
  headers.set(REQUEST_ID_HEADER, requestId);
  setTraceHeaders(headers, ctx.trace);
  headers.set(CALLER_HEADER, 'gateway');
  headers.set(ROUTE_HEADER, route.name);
  let response: Response;
  try {
    response = await upstream.fetch(outbound);
  } catch (e) {
    logEvent('error', 'backend failed', { requestId, route: route.name, backend: backend!.label, error: String((e as Error)?.message ?? e) });
    return errorResponse(502, 'bad_gateway', `backend ${backend!.label} failed to answer`, requestId);
  }
  return relayResponse(response, requestId);
};
