/** JSON Schema for routes/*.yaml, generated from the zod schema so the two cannot drift. */
import { z } from 'zod';
import { MeshFile } from './schema.ts';

export function routesJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(MeshFile, { io: 'input', unrepresentable: 'any', target: 'draft-07' }),
    $id: 'https://meshwork.dev/schema/routes.schema.json',
    title: 'meshwork routes file',
  };
}
