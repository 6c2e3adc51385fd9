/**
 * Layer: choose the endpoint (by weight, optionally within one version) and how to reach it, or
 * answer 503 at once: nothing is built or signed for a call that cannot be sent.
 */
import { versionKey } from '../../core/endpoint.ts';
import { errorResponse } from '../../core/errors.ts';
import { logEvent } from '../../core/log.ts';
import { callerOf, type Layer } from '../call.ts';
import { pickEndpoint } from '../endpoints.ts';
import { upstreamFor } from '../upstream.ts';

export const chooseEndpoint: Layer = (next) => (call) => {
  const endpoint = pickEndpoint(call.target!.endpoints, call.version);
  if (!endpoint) {
    const what = versionKey(call.service, call.version);
    return Promise.resolve(errorResponse(503, 'no_backend', `no backend available for ${what}`, call.requestId));
  }
  const upstream = upstreamFor(call.env, endpoint);
  if (!upstream) {
    const caller = callerOf(call);
    logEvent('error', 'binding missing', { requestId: call.requestId, caller, endpoint: endpoint.key });
    const where = caller === 'gateway' ? 'the gateway' : caller;
    return Promise.resolve(
      errorResponse(503, 'no_backend', `backend ${endpoint.key} is not bound in ${where}`, call.requestId),
    );
  }
  call.endpoint = endpoint;
  call.upstream = upstream;
  return next(call);
};
