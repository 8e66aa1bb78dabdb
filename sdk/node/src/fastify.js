// Fastify: a plugin (not encapsulated, so it sees the routes of the scope it is registered in
// and of its children) that requires `config: { tessera: <declaration> }` on every route
// registered after it: a route without one makes registration throw, so the server does not
// start. Authentication runs at `onRequest` (before the body is read); the tenant and ABAC
// parts of the declaration, which may read the body, at `preHandler`.

export function plugin(guard) {
  const fn = async function tesseraGuard(fastify) {
    if (!fastify.hasRequestDecorator('principal')) fastify.decorateRequest('principal', null);
    fastify.addHook('onRoute', (route) => {
      const decl = route.config?.tessera;
      const where = `${[].concat(route.method).join(',')} ${route.url}`;
      guard.declare(decl, where);
      if (decl.public) return;
      const authn = async (request, reply) => {
        try {
          const p = await guard.authenticate(request.headers.authorization);
          // The scope check needs nothing from the body: refuse before it is read.
          await guard.authorize(p, { permission: decl.permission }, request);
          request.principal = p;
        } catch (e) {
          return refuse(guard, reply, e);
        }
      };
      const authz = async (request, reply) => {
        try {
          await guard.authorize(request.principal, decl, request);
        } catch (e) {
          return refuse(guard, reply, e);
        }
      };
      route.onRequest = [authn, ...[].concat(route.onRequest ?? [])];
      route.preHandler = [authz, ...[].concat(route.preHandler ?? [])];
    });
  };
  fn[Symbol.for('skip-override')] = true;
  fn[Symbol.for('fastify.display-name')] = '@tessera/guard';
  return fn;
}

function refuse(guard, reply, e) {
  const a = guard.answer(e);
  return reply.code(a.status).headers(a.headers).send(Buffer.from(a.body));
}
