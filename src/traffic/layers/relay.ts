/** Layer (outermost): the answer as the caller gets it, streamed, hop-by-hop headers removed, with the request id. */
import type { Layer } from '../call.ts';
import { relayResponse } from '../upstream.ts';

export const relay: Layer = (next) => async (call) => relayResponse(await next(call), call.requestId);
