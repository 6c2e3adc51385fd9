/**
 * {{name}}: a service of the mesh. The gateway sends it {{path}} (routes/{{name}}.yaml); other
 * services reach it with `mesh.fetch('{{name}}', path)`. withMesh takes a Hono app too:
 * `withMesh(app, { service: '{{name}}' })`, with the mesh client at `c.var.mesh`.
 */
import { withMesh } from 'meshwork';

export default withMesh(
  (request, _env, _ctx, mesh) => {
    const url = new URL(request.url);
    // To call another service of the mesh (identity, routing and limits included):
    //   const res = await mesh.fetch('other-service', '/other-service/hello');
    return Response.json({
      service: '{{name}}',
      path: url.pathname,
      caller: mesh.caller ?? null,
      user: mesh.user?.sub ?? null,
      requestId: mesh.requestId,
    });
  },
  { service: '{{name}}' },
);
