/** Layer: choose the endpoint (by weight, optionally within one version), or answer 503 at once. */
import { versionKey } from '../../core/endpoint.ts';
import { errorResponse } from '../../core/errors.ts';
import type { Layer } from '../call.ts';
import { pickEndpoint } from '../endpoints.ts';

export const chooseEndpoint: Layer = (next) => (call) => {
  const endpoints = call.plan.services.get(call.service)!.endpoints;
  const endpoint = pickEndpoint(endpoints, call.version);
  if (!endpoint) {
    const what = versionKey(call.service, call.version);
    return Promise.resolve(errorResponse(503, 'no_backend', `no backend available for ${what}`, call.requestId));
  }
  call.endpoint = endpoint;
  return next(call);
};
