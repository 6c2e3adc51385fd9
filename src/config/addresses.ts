/**
 * What kind of address a URL points at, so the config can refuse backends that would turn the
 * mesh into a way into internal networks: cloud metadata services and link-local addresses never,
 * private networks and this machine only when the config says so (network.allowPrivateBackends,
 * network.allowLoopbackBackends; loopback is allowed under `npm run dev`).
 *
 * Only the URL is judged: a public name that resolves to an internal address cannot be caught
 * here (on Cloudflare, Workers cannot reach private addresses at all; behind your own workerd,
 * restrict egress at the network).
 */
import { ipv6Groups, mappedIpv4 } from '../core/ip.ts';

export type AddressClass = 'public' | 'private' | 'loopback' | 'link-local' | 'metadata' | 'not-unicast';

/** Cloud metadata endpoints by name (their addresses are link-local or listed below). */
const METADATA_HOSTS = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
]);

function ipv4Class(a: number, b: number, c: number, d: number): AddressClass {
  if (a === 169 && b === 254) return c === 169 && d === 254 ? 'metadata' : 'link-local';
  if (a === 127 || a === 0) return 'loopback';
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127))
    return 'private';
  if (a >= 224) return 'not-unicast';
  return 'public';
}

function ipv6Class(text: string): AddressClass {
  const n = ipv6Groups(text);
  if (!n) return 'public';
  const v4 = mappedIpv4(n);
  if (v4) return ipv4Class(...v4);
  if (n.slice(0, 7).every((x) => x === 0)) return 'loopback'; // ::1 and ::
  // AWS's IPv6 metadata endpoint fd00:ec2::254.
  if (n[0] === 0xfd00 && n[1] === 0xec2 && n.slice(2, 7).every((x) => x === 0) && n[7] === 0x254) return 'metadata';
  if ((n[0]! & 0xffc0) === 0xfe80) return 'link-local';
  if ((n[0]! & 0xfe00) === 0xfc00) return 'private';
  if ((n[0]! & 0xff00) === 0xff00) return 'not-unicast';
  return 'public';
}

export function addressClass(url: URL): AddressClass {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  if (host.startsWith('[')) return ipv6Class(host.slice(1, -1));
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  if (v4) return ipv4Class(Number(v4[1]), Number(v4[2]), Number(v4[3]), Number(v4[4]));
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback';
  if (METADATA_HOSTS.has(host)) return 'metadata';
  return 'public';
}

export interface AddressPolicy {
  allowPrivate: boolean;
  allowLoopback: boolean;
}

/** Why a URL may not be a backend under `policy`; undefined when it may. */
export function refusedAddress(url: URL, policy: AddressPolicy): string | undefined {
  const kind = addressClass(url);
  if (kind === 'metadata') return `${url.hostname} is a cloud metadata service: never a backend`;
  if (kind === 'link-local') return `${url.hostname} is a link-local address: never a backend`;
  if (kind === 'not-unicast') return `${url.hostname} is not a unicast address`;
  if (kind === 'private' && !policy.allowPrivate)
    return `${url.hostname} is a private address: set network.allowPrivateBackends: true to allow it`;
  if (kind === 'loopback' && !policy.allowLoopback)
    return `${url.hostname} is this machine: set network.allowLoopbackBackends: true to allow it`;
  return undefined;
}
