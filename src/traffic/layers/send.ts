/** The end of the stack: send over the binding (or to the URL) and map a failure to the mesh's 502. */
import { errorResponse } from '../../core/errors.ts';
import { errorText, logEvent } from '../../core/log.ts';
import { callerOf, type Send } from '../call.ts';

export const send: Send = (call) => {
  const endpoint = call.endpoint!;
  const signal = call.abort?.signal;
  return call.upstream!.fetch(call.request!, signal ? { signal } : undefined).catch((e: unknown) => {
    // Cancelled by a timeout: the timeout has answered and logged it.
    if (signal?.aborted)
      return errorResponse(504, 'upstream_timeout', `backend ${endpoint.key} was cancelled`, call.requestId);
    call.unreachable = true;
    call.noAnswer = true;
    logEvent('error', 'backend failed', {
      requestId: call.requestId,
      caller: callerOf(call),
      endpoint: endpoint.key,
      error: errorText(e),
    });
    return errorResponse(502, 'bad_gateway', `backend ${endpoint.key} failed to answer`, call.requestId);
  });
};
