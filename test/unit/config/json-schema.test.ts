import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { routesJsonSchema } from '../../../src/config/json-schema.ts';

describe('JSON Schema for editors', () => {
  it('schema/routes.schema.json is up to date with the zod schema (npm run build:schema)', () => {
    expect(JSON.parse(readFileSync('schema/routes.schema.json', 'utf8'))).toEqual(routesJsonSchema());
  });

  it('the routes files point yaml-language-server at it', () => {
    expect(readFileSync('routes/mesh.yaml', 'utf8')).toMatch(
      /^# yaml-language-server: \$schema=\.\.\/schema\/routes\.schema\.json/,
    );
  });
});
