/**
 * Endpoint identity. An endpoint is one place a version of a service is served from: a worker
 * behind a service binding, a URL, and later a Kubernetes pod or load balancer. Its key,
 *
 *     <service>@<version>/<endpoint>     or, for an unversioned backend,     <service>/<endpoint>
 *
 * is unique in the mesh and stable while the endpoint exists, so it can name the endpoint in
 * registry records, logs and metrics, and carry per-endpoint state (balancer, outlier detection)
 * across config versions. Service names are DNS labels and versions have no "/" or "@", so a key
 * always splits back into its parts.
 */

export interface EndpointRef {
  service: string;
  version: string | undefined;
  /** Unique within the service version: a binding name, a host[:port], or a name given in config. */
  endpoint: string;
}

/**
 * Endpoint names: letters, digits and ".", "_", ":", "~", "-", at most 253 characters, starting
 * and ending alphanumeric; or a bracketed IPv6 address with an optional port ("[2001:db8::1]:8080").
 */
export const ENDPOINT_NAME =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9._:~-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?)$/;

/** The endpoint a wrapped worker's own heartbeat speaks for: its version's worker deployment. */
export const WORKER_ENDPOINT = 'worker';

export function endpointKey(ref: EndpointRef): string {
  return ref.version === undefined ? `${ref.service}/${ref.endpoint}` : `${ref.service}@${ref.version}/${ref.endpoint}`;
}

/** The service and version part of a key: "service@version", or the service name alone. */
export function versionKey(service: string, version: string | undefined): string {
  return version === undefined ? service : `${service}@${version}`;
}

export function parseEndpointKey(key: string): EndpointRef | undefined {
  const slash = key.indexOf('/');
  if (slash <= 0) return undefined;
  const head = key.slice(0, slash);
  const endpoint = key.slice(slash + 1);
  if (!ENDPOINT_NAME.test(endpoint)) return undefined;
  const at = head.indexOf('@');
  if (at === 0 || at === head.length - 1) return undefined;
  return at < 0
    ? { service: head, version: undefined, endpoint }
    : { service: head.slice(0, at), version: head.slice(at + 1), endpoint };
}

/** The name an endpoint gets when none is given: its binding, or its URL's host[:port]. */
export function defaultEndpointName(target: { binding?: string | undefined; url?: string | undefined }): string {
  if (target.binding !== undefined) return target.binding;
  return new URL(target.url!).host;
}
