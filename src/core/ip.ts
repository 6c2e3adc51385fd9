/** IP address text as numbers, shared by the egress address rules and rate-limit client keys. */

/**
 * The eight 16-bit groups of an IPv6 address ("::" expanded, a dotted IPv4 tail such as
 * "::ffff:203.0.113.7" read as two groups); undefined when the text is not one.
 */
export function ipv6Groups(text: string): number[] | undefined {
  let t = text.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(t);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    if ([a, b, c, d].some((x) => x > 255)) return undefined;
    t = `${t.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parts = t.split('::');
  if (parts.length > 2) return undefined;
  const [head, tail] = parts as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const rest = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - rest.length)).fill('0'), ...rest];
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.map((g) => Number.parseInt(g, 16));
}

/** The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d) stands for, if it is one. */
export function mappedIpv4(groups: readonly number[]): [number, number, number, number] | undefined {
  if (groups.length !== 8 || !groups.slice(0, 5).every((x) => x === 0) || groups[5] !== 0xffff) return undefined;
  return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255];
}
