/**
 * Where a bucket lives: the Durable Object (by name) and the bucket's key within it. Pure, so
 * the gateway, the services' entrypoint and tests compute the same placement.
 */
import type { BucketKey, CompiledLimit } from './policy.ts';

/**
 * Buckets are named by who enforces them ("gateway|<policy>|<key>", "svc:<name>|<policy>|<key>"):
 * a service can only ever touch its own, and a policy enforced both at the gateway and by a
 * service keeps a budget at each.
 */
export function bucketName(member: string, id: string): string {
  return member === 'gateway' ? `gateway|${id}` : `svc:${member}|${id}`;
}

/** FNV-1a: a fast, stable spread of keys over partitions (not a security boundary). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Which object holds a bucket (by its enforcer's name), and the bucket's key within it. */
export function placement(limit: CompiledLimit, key: BucketKey, member: string): { object: string; key?: string } {
  if (limit.partitions === undefined) return { object: bucketName(member, key.id) };
  // No per-key object has this name: encoded values never start with "#p" (they are
  // percent-encoded, and a long key hashes to "#" and hex digits).
  return { object: bucketName(member, `${limit.name}|#p${fnv1a(key.id) % limit.partitions}`), key: key.id };
}
