/**
 * Rate-limit policies compiled once per config: parameters, key recipe, per-key overrides and
 * the RateLimit-Policy header text.
 */
import type { JWTPayload } from 'jose';
import { sha256Hex } from '../core/hash.ts';
import { ipv6Groups, mappedIpv4 } from '../core/ip.ts';
import type { RateLimitPolicySpec } from '../config/schema.ts';
import type { LimitParams } from './algorithms.ts';

export type KeySource =
  | { kind: 'ip' }
  | { kind: 'route' }
  | { kind: 'caller' }
  | { kind: 'claim'; name: string }
  | { kind: 'header'; name: string };

/** One part of a bucket key: its sources in order; the first with a value counts ("claim:sub ?? ip"). */
export type KeyPart = readonly KeySource[];

export interface CompiledLimit {
  name: string;
  params: LimitParams;
  cost: number;
  key: readonly KeyPart[];
  /** By raw key value (parts joined with "|"). */
  overrides: ReadonlyMap<string, LimitParams>;
  failOpen: boolean;
  lease: { size: number; ttlMs: number } | undefined;
  /** Service policies: only calls from these members count; undefined = every call. */
  callers: ReadonlySet<string> | undefined;
  /** This policy's item in the RateLimit-Policy header. */
  policyHeader: string;
  /** The Durable Object namespace binding of the bucket store (rateLimitStore.binding). */
  store: string;
  /** Objects the policy's buckets are spread over; undefined: one object per key. */
  partitions: number | undefined;
}

/** What a key can be built from. Claims are only ever verified ones. */
export interface LimitFacts {
  clientIp: string | null;
  /** The configured issuer that verified `claims`: claim keys are counted per issuer. */
  issuer?: string | undefined;
  route: string | undefined;
  caller: string | undefined;
  claims: JWTPayload | undefined;
  headers: Headers;
}

/**
 * The value used when a request has nothing for a key part (no token, no header): all such
 * requests share that one bucket, so a missing value is limited, never unlimited.
 */
export const MISSING = '%none';

function parseKeySource(source: string): KeySource {
  if (source === 'ip' || source === 'route' || source === 'caller') return { kind: source };
  if (source.startsWith('claim:')) return { kind: 'claim', name: source.slice(6) };
  return { kind: 'header', name: source.slice(7).toLowerCase() };
}

function parseKeyPart(part: string): KeyPart {
  return part.split('??').map((s) => parseKeySource(s.trim()));
}

/** The request's value for one source of a key part; undefined when it has none. */
function sourceValue(source: KeySource, facts: LimitFacts): string | undefined {
  if (source.kind === 'ip') return facts.clientIp ? clientNetwork(facts.clientIp) : undefined;
  if (source.kind === 'route') return facts.route;
  if (source.kind === 'caller') return facts.caller;
  if (source.kind === 'claim') return claimValue(facts.claims, source.name);
  return facts.headers.get(source.name) ?? undefined;
}

export function compileLimit(
  name: string,
  spec: RateLimitPolicySpec,
  store: string,
  storePartitions?: number,
): CompiledLimit {
  const params: LimitParams = {
    algorithm: spec.algorithm,
    limit: spec.limit,
    periodMs: spec.period * 1000,
    burst: spec.burst,
  };
  const overrides = new Map<string, LimitParams>();
  for (const [value, o] of Object.entries(spec.overrides)) {
    const m = o.multiplier ?? 1;
    overrides.set(value, {
      ...params,
      limit: Math.max(1, (o.limit ?? params.limit) * m),
      burst: Math.max(1, Math.round((o.burst ?? params.burst) * m)),
    });
  }
  return {
    name,
    params,
    cost: spec.cost,
    key: spec.key.map(parseKeyPart),
    overrides,
    failOpen: spec.onStoreFailure === 'open',
    lease: spec.lease ? { size: spec.lease.size, ttlMs: spec.lease.ttl * 1000 } : undefined,
    callers: spec.callers ? new Set(spec.callers) : undefined,
    policyHeader: policyItem(name, params.limit, spec.period),
    store,
    partitions: spec.partitions ?? storePartitions,
  };
}

/** A RateLimit-Policy item. Windows are whole seconds, so a sub-second period is scaled to 1 s. */
export function policyItem(name: string, limit: number, periodSeconds: number): string {
  if (periodSeconds < 1) return `"${name}";q=${Math.floor(limit / periodSeconds)};w=1`;
  return `"${name}";q=${limit};w=${Math.round(periodSeconds)}`;
}

/**
 * The client for rate limiting: an IPv4 address, or the /64 of an IPv6 one (a single client
 * typically holds a whole /64 and could otherwise rotate through fresh buckets).
 */
export function clientNetwork(ip: string): string {
  if (!ip.includes(':')) return ip;
  const n = ipv6Groups(ip);
  // Not an address (a configured header can carry anything): keyed as given.
  if (!n) return ip;
  // An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4 client: keyed by its address, not a /64
  // that every IPv4 client would share.
  const v4 = mappedIpv4(n);
  if (v4) return v4.join('.');
  return `${n
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

function claimValue(claims: JWTPayload | undefined, name: string): string | undefined {
  const v = claims?.[name];
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

export interface BucketKey {
  /** Values joined with "|", for overrides. */
  raw: string;
  /** Durable Object name: policy plus encoded values; header values only as a hash. */
  id: string;
  /**
   * The key as metrics and the dashboard's hot keys may show it: the values, but a header's
   * (an API key...) only as "#" and the start of its hash.
   */
  shown: string;
}

/**
 * The bucket for a request. Synchronous unless a part must be hashed (header values, very long
 * keys): the common keys (ip, claim, route, caller) cost no promise on the request path.
 */
export function bucketKey(limit: CompiledLimit, facts: LimitFacts): BucketKey | Promise<BucketKey> {
  const raw: string[] = [];
  const hashedAt: number[] = [];
  const encoded: Array<string | Promise<string>> = [];
  let pending = false;
  for (const part of limit.key) {
    let value: string | undefined;
    let source = part[0]!;
    for (const candidate of part) {
      value = sourceValue(candidate, facts);
      source = candidate;
      if (value !== undefined) break;
    }
    raw.push(value ?? MISSING);
    // With alternatives, which one matched is part of the bucket: sub "a" is not ip "a".
    const tag = part.length > 1 ? `${source.kind}=` : '';
    if (value === undefined) encoded.push(MISSING);
    // Two issuers may both say sub=alice: their users get separate buckets.
    else if (source.kind === 'claim')
      encoded.push(`${tag}${encodeURIComponent(facts.issuer ?? '')}~${encodeURIComponent(value)}`);
    else if (source.kind === 'header') {
      // Header values (API keys...) never become object names or log lines: only their hash.
      hashedAt.push(raw.length - 1);
      encoded.push(sha256Hex(value).then((h) => tag + h.slice(0, 32)));
      pending = true;
    } else encoded.push(tag + encodeURIComponent(value));
  }
  const finish = (parts: string[]): BucketKey | Promise<BucketKey> => {
    const id = `${limit.name}|${parts.join('|')}`;
    const rawKey = raw.join('|');
    let shown = rawKey;
    if (hashedAt.length > 0) {
      const values = [...raw];
      for (const i of hashedAt) values[i] = `#${parts[i]!.slice(-32, -20)}`;
      shown = values.join('|');
    }
    if (id.length <= 512) return { raw: rawKey, id, shown };
    return sha256Hex(id).then((h) => ({ raw: rawKey, id: `${limit.name}|#${h}`, shown }));
  };
  // Some parts are hashes still being computed, the rest plain strings: Promise.all takes both.
  // eslint-disable-next-line @typescript-eslint/await-thenable
  return pending ? Promise.all(encoded).then(finish) : finish(encoded as string[]);
}
