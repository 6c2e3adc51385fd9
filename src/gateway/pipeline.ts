/**
 * The gateway's request path, in order. Each stage is one module under stages/, readable and
 * testable alone: match -> choose backend -> forward. (Authentication, authorization and rate
 * limiting slot in between match and backend choice.)
 */
import type { Stage } from './context.ts';
import { chooseBackend } from './stages/backend.ts';
import { forward } from './stages/forward.ts';
import { matchRoute } from './stages/match.ts';

export const gatewayStages: readonly Stage[] = [matchRoute, chooseBackend, forward];
