// Express: a middleware per declaration, and a route builder whose every route must declare its
// permission. A route registered through `routes(app)` without a declaration throws at
// registration (the service does not start); an unknown permission makes `guard.start()` reject.

const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'all'];

function send(guard, res, e) {
  const a = guard.answer(e);
  res.status(a.status);
  for (const [k, v] of Object.entries(a.headers)) res.setHeader(k, v);
  res.end(a.body);
}

/** The middleware enforcing one declaration; sets `req.principal`. */
export function middleware(guard, decl, where = 'express route') {
  guard.declare(decl, where);
  if (decl.public) return (req, _res, next) => next();
  return (req, res, next) => {
    guard.guard(req.headers.authorization, decl, req).then(
      (p) => {
        req.principal = p;
        next();
      },
      (e) => send(guard, res, e),
    );
  };
}

/** Wraps an Express app or Router: `routes.get(path, declaration, ...handlers)`. */
export function routes(guard, target) {
  if (!target || typeof target.get !== 'function') throw new TypeError('routes() takes an Express app or Router');
  const out = { target };
  for (const m of METHODS) {
    out[m] = (path, decl, ...handlers) => {
      const where = `${m.toUpperCase()} ${path}`;
      const mw = middleware(guard, decl, where);
      if (handlers.length === 0) throw new TypeError(`${where}: a declaration and a handler are required`);
      target[m](path, mw, ...handlers);
      return out;
    };
  }
  return out;
}
