/**
 * Layer: build the request to send. At the edge it is the client's request (same method, body
 * streamed through, end-to-end headers only) with the forwarding headers the gateway vouches
 * for; from a service it is what the handler asked for. Either way, every x-mesh-* and claim
 * header is removed here: only the mesh sets them, in the next layer.
 */
import { CLIENT_ADDRESS_HEADER, setForwarded, stripHopByHop } from '../../core/headers.ts';
import { removeToken } from '../../auth/token.ts';
import type { Layer } from '../call.ts';
import { applyHeaderOps } from '../policy.ts';
import { upstreamUrl } from '../upstream.ts';

export const buildRequest: Layer = (next) => (call) => {
  const endpoint = call.endpoint!;
  const source = call.source;
  let request: Request;
  if (source.kind === 'edge') {
    const { request: client, url } = source;
    const hasBody = client.method !== 'GET' && client.method !== 'HEAD';
    const host = source.route.hostname;
    const origin = host ? `${url.protocol}//${host}` : url.origin;
    request = new Request(upstreamUrl(endpoint, origin, call.pathAndQuery), {
      method: client.method,
      headers: client.headers,
      // A body kept for retries is sent from the copy; otherwise streamed through.
      body: hasBody ? (call.body ?? client.body) : null,
      redirect: 'manual',
    });
    stripHopByHop(request.headers, true, call.plan.edgeDropped);
    setForwarded(request.headers, url, source.clientIp);
    // The address as the gateway determined it, for services' ip keys (they trust it from the gateway only).
    if (source.clientIp) request.headers.set(CLIENT_ADDRESS_HEADER, source.clientIp);
    if (source.route.dropToken) removeToken(request.headers, source.route.dropToken);
    if (source.dropAuthorization) request.headers.delete('authorization');
    // The route's own edits last: they cannot touch the mesh's headers (refused at validation).
    if (source.route.requestHeaders) applyHeaderOps(request.headers, source.route.requestHeaders);
  } else {
    // A malformed init (e.g. a GET with a body) is the handler's bug: it throws to the handler.
    request = new Request(upstreamUrl(endpoint, `http://${call.service}`, call.pathAndQuery), source.init);
    stripHopByHop(request.headers, true, call.plan.claimHeaderNames);
  }
  call.request = request;
  return next(call);
};
