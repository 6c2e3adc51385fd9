/**
 * Stage: injected faults (route `fault`), for resilience testing: a share of the route's
 * requests is held for a fixed delay, and a share answered with the configured status instead of
 * being forwarded. Each is drawn independently per request.
 */
import { errorResponse } from '../../core/errors.ts';
import { withHeaders } from '../../core/headers.ts';
import type { Stage } from '../context.ts';

export const injectFault: Stage = async (ctx) => {
  const fault = ctx.hit!.route.fault;
  if (!fault) return undefined;
  if (fault.delay && Math.random() * 100 < fault.delay.percent)
    await new Promise((r) => setTimeout(r, fault.delay!.ms));
  if (fault.abort && Math.random() * 100 < fault.abort.percent) {
    const response = errorResponse(
      fault.abort.status,
      'fault_injected',
      `route "${ctx.hit!.route.name}" injected this fault`,
      ctx.requestId,
    );
    return ctx.responseHeaders ? withHeaders(response, ctx.responseHeaders, 'append') : response;
  }
  return undefined;
};
