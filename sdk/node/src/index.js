// @tessera/guard: protect Express and Fastify services with Tessera (see ../README.md).

import { Guard } from './guard.js';
import { middleware, routes } from './express.js';
import { plugin } from './fastify.js';

export { Guard, Principal, validateDeclaration } from './guard.js';
export { GuardError } from './errors.js';
export { RevocationState, RevocationFeed } from './revocations.js';
export { Jwks } from './jwks.js';

/** A guard with its framework adapters. Call `await guard.start()` before serving. */
export class TesseraGuard extends Guard {
  constructor(o) {
    super(o);
    /** Fastify plugin: `app.register(guard.fastify)`. */
    this.fastify = plugin(this);
  }

  /** Express middleware enforcing one declaration. */
  express(decl) {
    return middleware(this, decl);
  }

  /** Express route builder: every route declares its permission. */
  routes(appOrRouter) {
    return routes(this, appOrRouter);
  }
}

/** Creates a guard (not yet started). */
export function createGuard(options) {
  return new TesseraGuard(options);
}
