/**
 * Layer (outermost): at the edge, the answer as the client gets it: streamed, hop-by-hop headers
 * removed, with the request id. A service calling through `mesh.fetch` gets the callee's response
 * as it is: its handler reads it, and copying it would cost every east-west call.
 */
import type { Layer } from '../call.ts';
import { relayResponse } from '../upstream.ts';

export const relay: Layer = (next) => (call) =>
  call.source.kind === 'edge' ? next(call).then((r) => relayResponse(r, call.requestId)) : next(call);
