/**
 * Request ids and W3C Trace Context (https://www.w3.org/TR/trace-context/).
 */
import { REQUEST_ID_HEADER, TRACEPARENT_HEADER, TRACESTATE_HEADER } from './header-names.ts';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const REQUEST_ID = /^[A-Za-z0-9._:+/=-]{1,128}$/;

export interface TraceContext {
  traceId: string;
  /** The span id of the caller (from the incoming traceparent), if any. */
  parentId: string | undefined;
  flags: string;
  tracestate: string | null;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function randomHex(bytes: number): string {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  let s = '';
  for (let i = 0; i < bytes; i++) s += HEX[buf[i]!];
  return s;
}

/** Keeps a well-formed incoming id (so callers can correlate), otherwise makes one. */
export function requestIdFrom(headers: Headers): string {
  const given = headers.get(REQUEST_ID_HEADER);
  return given !== null && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

/** Continues the caller's trace, or starts a new sampled one if there is none or it is invalid. */
export function traceFrom(headers: Headers): TraceContext {
  const m = TRACEPARENT.exec(headers.get(TRACEPARENT_HEADER) ?? '');
  // Version ff is forbidden; all-zero ids are invalid (spec section 3.2.2).
  if (m && m[1] !== 'ff' && !/^0+$/.test(m[2]!) && !/^0+$/.test(m[3]!) && (m[1] !== '00' || m[5] === undefined)) {
    return { traceId: m[2]!, parentId: m[3]!, flags: m[4]!, tracestate: headers.get(TRACESTATE_HEADER) };
  }
  return { traceId: randomHex(16), parentId: undefined, flags: '01', tracestate: null };
}

/** A traceparent for the next hop: same trace, a new span id for this hop. */
export function childTraceparent(trace: TraceContext): string {
  return `00-${trace.traceId}-${randomHex(8)}-${trace.flags}`;
}

export function setTraceHeaders(headers: Headers, trace: TraceContext): void {
  headers.set(TRACEPARENT_HEADER, childTraceparent(trace));
  if (trace.tracestate) headers.set(TRACESTATE_HEADER, trace.tracestate);
  else headers.delete(TRACESTATE_HEADER);
}
