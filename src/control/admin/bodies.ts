/** The admin API's request bodies: validated like every other input, unknown fields refused. */
import { z } from 'zod';
import { BackendUrl, BindingName, EndpointName, ServiceName, Version, Weight } from '../../config/schema.ts';

const RoutesFile = z.strictObject({
  name: z.string().min(1).max(255),
  text: z.string(),
});

export const ApplyBody = z.strictObject({
  files: z.array(RoutesFile).min(1).max(100),
  message: z.string().max(500).optional(),
  /** Apply even a config that removes every route or every service. */
  force: z.boolean().optional(),
});
export const APPLY_SHAPE = '{ "files": [{ "name", "text" }, ...], "message"?, "force"? }';

export const DiffBody = z.strictObject({ files: ApplyBody.shape.files });
export const DIFF_SHAPE = '{ "files": [{ "name", "text" }, ...] }';

export const RollbackBody = z.union(
  [
    z.strictObject({ revision: z.number().int().min(0) }),
    z.strictObject({ version: z.string().regex(/^[0-9a-f]{12}$/, 'must be a config version (12 hex digits)') }),
    z.strictObject({}),
  ],
  { error: 'must be { "revision": <n> }, { "version": "<config version>" }, or {} for the previous config' },
);
export const ROLLBACK_SHAPE = '{ "revision": <n> } | { "version": "<12 hex>" } | {}';

/** A single path on the endpoint's own origin: never "//host/..." (that names another host). */
const HealthPath = z
  .string()
  .max(256)
  .regex(/^\/(?!\/)[^\s?#\\]*$/, 'must be a path on the endpoint, starting with a single "/"');

export const InstanceBody = z
  .strictObject({
    service: ServiceName,
    version: Version.optional(),
    endpoint: EndpointName.optional(),
    binding: BindingName.optional(),
    url: BackendUrl.optional(),
    weight: Weight.optional(),
    healthPath: HealthPath.optional(),
    metadata: z
      .record(z.string().min(1).max(63), z.string().max(256))
      .refine((m) => Object.keys(m).length <= 32, 'at most 32 entries')
      .optional(),
  })
  .superRefine((b, ctx) => {
    // Neither: the record speaks for the version's config endpoints, as a worker's heartbeat does.
    if (b.binding !== undefined && b.url !== undefined)
      ctx.addIssue({ code: 'custom', message: 'an endpoint has at most one of "binding" or "url"' });
  });
export const INSTANCE_SHAPE =
  '{ "service", "version"?, "endpoint"?, "binding"? | "url"?, "weight"?, "healthPath"?, "metadata"? }';
