import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { inject } from 'vitest';
import { MeshKeys } from '../../src/identity/keys.ts';
import { IdentityMinter } from '../../src/identity/tokens.ts';
import { validateSources } from '../../src/config/validate.ts';
import { formatIssue } from '../../src/config/validate.ts';
import { compileMesh, type CompiledMesh, type MeshBundle } from '../../src/mesh/compile.ts';

/** Validates and compiles YAML inside workerd, exactly as the control plane will. */
export function bundleFrom(yaml: string): MeshBundle {
  const r = validateSources([{ name: 'test.yaml', text: yaml }]);
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return { version: 'test-version', config: r.config };
}

export function meshFrom(yaml: string): CompiledMesh {
  return compileMesh(bundleFrom(yaml));
}

export type Echo = { name: string; method: string; url: string; headers: Record<string, string>; body: string | null };

interface Fetchable {
  fetch(request: Request, env: never, ctx: ExecutionContext): Response | Promise<Response>;
}

/** Calls a worker's fetch handler in this isolate, with the test env's real bindings. */
export async function call(worker: Fetchable, input: string | Request, init?: RequestInit, bindings: object = env): Promise<Response> {
  const request = typeof input === 'string' ? new Request(input, init) : input;
  const ctx = createExecutionContext();
  const res = await worker.fetch(request, bindings as never, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** Env for a worker acting as `member`: its own signing key and everyone's public keys. */
export function memberEnv(member: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...env, MESH_SIGNING_KEY: JSON.stringify(inject('memberKeys')[member]!.privateJwk), ...extra };
}

const minters = new Map<string, IdentityMinter>();

/** Headers carrying `member`'s identity token for a call to `target`, minted as the mesh does. */
export async function identityHeaders(member: string, target: string): Promise<Record<string, string>> {
  let minter = minters.get(member);
  if (!minter) minters.set(member, (minter = new IdentityMinter(new MeshKeys(undefined), 60)));
  return { 'x-mesh-identity': await minter.identityFor(target, memberEnv(member)) };
}
