/** What the admin API's handlers share: their Hono env, the request id, and JSON bodies checked with zod. */
import type { Context } from 'hono';
import type { z } from 'zod';
import type { MeshBindings } from '../../core/bindings.ts';
import { errorResponse } from '../../core/errors.ts';

export type AdminEnv = { Bindings: MeshBindings; Variables: { actor: string; requestId: string } };
export type AdminContext = Context<AdminEnv>;

const MAX_BODY_BYTES = 1024 * 1024;

export function rid(c: AdminContext): string {
  return c.get('requestId');
}

/** The body as `schema` says, or the 4xx that says what is wrong with it (nothing is changed). */
export async function readBody<T>(c: AdminContext, schema: z.ZodType<T>, shape: string): Promise<T | Response> {
  const text = await c.req.text();
  if (text.length > MAX_BODY_BYTES) return errorResponse(413, 'too_large', 'request body over 1 MiB', rid(c));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return errorResponse(400, 'bad_request', `request body must be JSON: ${shape}`, rid(c));
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`)
    .join('; ');
  return errorResponse(400, 'bad_request', `${issues} (expected ${shape})`, rid(c));
}
