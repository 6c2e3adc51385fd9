/**
 * The gateway's request path, in order. Each stage is one module under stages/, readable and
 * testable alone: canonicalize -> match -> cors -> authenticate -> authorize -> rate-limit -> inject
 * fault -> redirect -> choose target -> forward.
 */
import type { Stage } from './context.ts';
import { authenticate } from './stages/authenticate.ts';
import { canonicalize } from './stages/canonicalize.ts';
import { cors } from './stages/cors.ts';
import { authorize } from './stages/authorize.ts';
import { injectFault } from './stages/fault.ts';
import { forward } from './stages/forward.ts';
import { redirect } from './stages/redirect.ts';
import { matchRoute } from './stages/match.ts';
import { rateLimit } from './stages/rate-limit.ts';
import { chooseTarget } from './stages/target.ts';

export const gatewayStages: readonly Stage[] = [
  canonicalize,
  matchRoute,
  cors,
  authenticate,
  authorize,
  rateLimit,
  injectFault,
  redirect,
  chooseTarget,
  forward,
];
