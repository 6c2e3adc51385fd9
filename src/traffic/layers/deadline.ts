/**
 * Layer: the request timeout (Gateway API `timeouts.request`): every try and back-off of the
 * call must be done within it, or the caller gets a 504 at once and the try in flight is
 * cancelled. Until the response starts: a body still streaming after that is not cut.
 */
import { errorResponse } from '../../core/errors.ts';
import { logEvent } from '../../core/log.ts';
import { callerOf, type Layer } from '../call.ts';
import { withTimeout } from '../timeout.ts';

export const deadline: Layer = (next) => (call) => {
  const ms = call.policy!.requestMs;
  if (ms <= 0) return next(call);
  call.deadlineAt = Date.now() + ms;
  return withTimeout(next(call), ms, () => {
    call.timedOut = true;
    call.noAnswer = true;
    call.abort?.abort();
    logEvent('warn', 'request timed out', {
      requestId: call.requestId,
      caller: callerOf(call),
      service: call.service,
      ms,
    });
    return errorResponse(
      504,
      'gateway_timeout',
      `${call.service} did not answer within ${ms} ms (timeouts.request)`,
      call.requestId,
    );
  });
};
