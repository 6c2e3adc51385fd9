/** The end of the stack: send over the binding (or to the URL) and map a failure to the mesh's 502. */
import { errorResponse } from '../../core/errors.ts';
import { errorText, logEvent } from '../../core/log.ts';
import { callerOf, type Send } from '../call.ts';
import { upstreamFor } from '../upstream.ts';

export const send: Send = async (call) => {
  const endpoint = call.endpoint!;
  const upstream = upstreamFor(call.env, endpoint);
  const caller = callerOf(call);
  if (!upstream) {
    logEvent('error', 'binding missing', { requestId: call.requestId, caller, endpoint: endpoint.key });
    const where = caller === 'gateway' ? 'the gateway' : caller;
    return errorResponse(503, 'no_backend', `backend ${endpoint.key} is not bound in ${where}`, call.requestId);
  }
  try {
    return await upstream.fetch(call.request!);
  } catch (e) {
    logEvent('error', 'backend failed', {
      requestId: call.requestId,
      caller,
      endpoint: endpoint.key,
      error: errorText(e),
    });
    return errorResponse(502, 'bad_gateway', `backend ${endpoint.key} failed to answer`, call.requestId);
  }
};
