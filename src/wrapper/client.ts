/**
 * The mesh client behind `mesh.fetch(service, path)`: east-west calls through the same outbound
 * call path as the gateway's (src/traffic), resolved in the same compiled config.
 */
import type { MeshBindings } from '../core/bindings.ts';
import type { TraceContext } from '../core/trace.ts';
import type { MeshUser } from '../core/user.ts';
import type { Plan } from '../plan/compile.ts';
import type { MeshRuntime } from '../runtime/runtime.ts';
import { callService } from '../traffic/index.ts';
import type { MeshFetchInit } from './context.ts';

export interface ClientScope {
  plan: Plan;
  runtime: MeshRuntime;
  env: MeshBindings;
  self: string;
  requestId: string;
  trace: TraceContext;
  /** The verified end user and the gateway's assertion of it, passed on to the next service. */
  user: MeshUser | undefined;
  userAssertion: string | undefined;
  waitUntil: (p: Promise<unknown>) => void;
}

export function meshFetch(
  scope: ClientScope,
  service: string,
  path: string,
  init: MeshFetchInit = {},
): Promise<Response> {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(
      `mesh.fetch(${JSON.stringify(service)}, path): path must start with "/", got ${JSON.stringify(path)}`,
    );
  }
  const { version, ...requestInit } = init;
  return callService({
    service,
    version,
    pathAndQuery: path,
    source: { kind: 'service', self: scope.self, init: requestInit },
    requestId: scope.requestId,
    trace: scope.trace,
    user: scope.user && scope.userAssertion ? { asserted: scope.user, assertion: scope.userAssertion } : undefined,
    plan: scope.plan,
    runtime: scope.runtime,
    env: scope.env,
    waitUntil: scope.waitUntil,
  });
}
