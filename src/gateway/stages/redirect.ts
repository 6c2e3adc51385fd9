/**
 * Stage: a route's redirect (Gateway API RequestRedirect): the Location is the request's URL
 * with the configured scheme, hostname, port and path put in; nothing is forwarded. A scheme
 * change without a port drops the port (the new scheme's default), as Gateway API says.
 */
import { REQUEST_ID_HEADER, withHeaders } from '../../core/headers.ts';
import { rewritePath } from '../../plan/compile.ts';
import type { Stage } from '../context.ts';

export const redirect: Stage = (ctx) => {
  const hit = ctx.hit!;
  const spec = hit.route.redirect;
  if (!spec) return undefined;
  const location = new URL(ctx.url.href);
  if (spec.scheme) {
    location.protocol = `${spec.scheme}:`;
    if (spec.port === undefined) location.port = '';
  }
  if (spec.hostname) location.hostname = spec.hostname;
  if (spec.port !== undefined) location.port = String(spec.port);
  if (spec.path) {
    const rewrite =
      'replaceFullPath' in spec.path
        ? { path: spec.path.replaceFullPath }
        : { pathPrefix: spec.path.replacePrefixMatch };
    location.pathname = rewritePath({ ...hit, route: { ...hit.route, rewrite } }, ctx.path);
  }
  const response = new Response(null, {
    status: spec.statusCode,
    headers: { location: location.href, [REQUEST_ID_HEADER]: ctx.requestId },
  });
  // After the rate-limit stage: the answer carries the route's RateLimit fields like any other.
  return ctx.responseHeaders ? withHeaders(response, ctx.responseHeaders, 'append') : response;
};
