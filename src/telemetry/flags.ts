/**
 * Envoy's response flags (the `response_flags` label of Istio's metrics and Envoy's access log
 * %RESPONSE_FLAGS%), derived from the mesh's own error codes: why the mesh answered instead of a
 * backend. "-" when a backend answered.
 */
const BY_CODE: Readonly<Record<string, string>> = {
  route_not_found: 'NR',
  unauthorized: 'UAEX',
  invalid_token: 'UAEX',
  insufficient_scope: 'UAEX',
  forbidden: 'UAEX',
  auth_unavailable: 'UAEX',
  cors_forbidden: 'UAEX',
  rate_limited: 'RL',
  rate_limit_unavailable: 'RLSE',
  fault_injected: 'FI',
  unknown_service: 'NR',
  no_backend: 'UH',
  no_healthy_backend: 'UH',
  upstream_timeout: 'UT',
  gateway_timeout: 'UT',
  bad_gateway: 'UF',
  bad_request: 'DPE',
  uri_too_long: 'DPE',
};

/**
 * The flag for an answer: the mesh's error code when it made the answer; URX when a backend's
 * failure is what is left after retries.
 */
export function responseFlags(meshError: string | undefined, status: number, retries: number): string {
  if (meshError !== undefined) return BY_CODE[meshError] ?? '-';
  return retries > 0 && status >= 500 ? 'URX' : '-';
}

/** Reasons counted in auth_failures: the refusal's code (one of the auth codes above). */
export function isAuthFailure(meshError: string | undefined): boolean {
  return meshError !== undefined && BY_CODE[meshError] === 'UAEX' && meshError !== 'cors_forbidden';
}

export const KNOWN_FLAGS: ReadonlySet<string> = new Set(['-', 'URX', ...Object.values(BY_CODE)]);
