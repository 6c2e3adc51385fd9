/**
 * Stage 0: the request's path and host in the one form routes match and backends receive
 * (core/path.ts), or 400/414 for requests that cannot be routed unambiguously.
 */
import { errorResponse } from '../../core/errors.ts';
import { canonicalHost, canonicalPath } from '../../core/path.ts';
import type { Stage } from '../context.ts';

export const canonicalize: Stage = (ctx) => {
  const path = canonicalPath(ctx.url.pathname);
  if (!path.ok)
    return errorResponse(
      path.status,
      path.status === 414 ? 'uri_too_long' : 'bad_request',
      path.message,
      ctx.requestId,
    );
  const host = canonicalHost(ctx.url.hostname);
  if (!host.ok) return errorResponse(host.status, 'bad_request', host.message, ctx.requestId);
  ctx.path = path.value;
  ctx.host = host.value;
  return undefined;
};
