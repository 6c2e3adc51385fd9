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
  /** This hop's own span: the parent of every try it makes. */
  spanId: string;
  flags: string;
  /** Whether this trace is recorded (the sampled flag, bit 0 of the trace flags). */
  sampled: boolean;
  tracestate: string | null;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Random ids for traces and spans (`bytes` a multiple of 4: 8 or 16). Math.random, not
 * crypto.getRandomValues: ids must be unique, not unguessable (OpenTelemetry's own
 * RandomIdGenerator does the same), and a native call per hop and per try cost more than the rest
 * of the trace handling. (An all-zero id, which W3C forbids, has a chance of 2^-64.)
 */
export function randomHex(bytes: number): string {
  let s = '';
  for (let i = 0; i < bytes; i += 4) {
    const r = (Math.random() * 0x100000000) >>> 0;
    s += HEX[r & 255]! + HEX[(r >>> 8) & 255]! + HEX[(r >>> 16) & 255]! + HEX[r >>> 24]!;
  }
  return s;
}

/** Keeps a well-formed incoming id (so callers can correlate), otherwise makes one. */
export function requestIdFrom(headers: Headers): string {
  const given = headers.get(REQUEST_ID_HEADER);
  return given !== null && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

/**
 * Continues the caller's trace (keeping its sampling decision), or starts a new one if there is
 * none or it is invalid; `sampleNew` decides whether a new trace is recorded.
 */
export function traceFrom(headers: Headers, sampleNew: (traceId: string) => boolean = () => false): TraceContext {
  const m = TRACEPARENT.exec(headers.get(TRACEPARENT_HEADER) ?? '');
  // Version ff is forbidden; all-zero ids are invalid (spec section 3.2.2).
  if (m && m[1] !== 'ff' && !/^0+$/.test(m[2]!) && !/^0+$/.test(m[3]!) && (m[1] !== '00' || m[5] === undefined)) {
    const flags = m[4]!;
    return {
      traceId: m[2]!,
      parentId: m[3]!,
      spanId: randomHex(8),
      // A later version's traceparent is read as version 00 (section 4.3): its flags' low bit is the sampled flag.
      flags,
      sampled: (parseInt(flags, 16) & 1) === 1,
      tracestate: headers.get(TRACESTATE_HEADER),
    };
  }
  const traceId = randomHex(16);
  const sampled = sampleNew(traceId);
  return {
    traceId,
    parentId: undefined,
    spanId: randomHex(8),
    flags: sampled ? '01' : '00',
    sampled,
    tracestate: null,
  };
}

/** The traceparent for a try whose span is `spanId`: same trace, same decision. */
export function traceparentOf(trace: TraceContext, spanId: string): string {
  return `00-${trace.traceId}-${spanId}-${trace.flags}`;
}

export function setTraceHeaders(headers: Headers, trace: TraceContext, spanId: string): void {
  headers.set(TRACEPARENT_HEADER, traceparentOf(trace, spanId));
  if (trace.tracestate) headers.set(TRACESTATE_HEADER, trace.tracestate);
  else headers.delete(TRACESTATE_HEADER);
}
