// The guard's answers: 401 with `WWW-Authenticate` (RFC 6750 §3), 403 / 404 / 503 as
// application/problem+json (RFC 9457) with a stable `code`. One place builds every refusal,
// so the Express middleware and the Fastify plugin answer byte for byte the same.

/** A refusal the guard answers with. `status` is 401, 403, 404 or 503. */
export class GuardError extends Error {
  /**
   * @param {number} status
   * @param {string} code  stable problem code: unauthenticated, forbidden, not_found, unavailable
   * @param {string} detail
   * @param {{error?: string, scope?: string}} [bearer]  RFC 6750 error and scope, for the header
   */
  constructor(status, code, detail, bearer = {}) {
    super(detail);
    this.name = 'GuardError';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.bearer = bearer;
  }
}

const TITLES = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  503: 'Service Unavailable',
};

// RFC 6750 §3: the attribute values are quoted-strings of %x20-21 / %x23-5B / %x5D-7E.
function quoted(s) {
  return String(s).replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?').slice(0, 200);
}

/** A missing credential: 401 without an error code (RFC 6750 §3.1). */
export const missing = () => new GuardError(401, 'unauthenticated', 'a bearer credential is required', {});
/** A credential that is malformed, expired, revoked, or for another audience. */
export const invalidToken = (detail) =>
  new GuardError(401, 'unauthenticated', detail, { error: 'invalid_token' });
/** The credential lacks a scope that grants the permission. */
export const insufficientScope = (permission, scopes) =>
  new GuardError(403, 'forbidden', `the credential does not grant \`${permission}\``, {
    error: 'insufficient_scope',
    scope: scopes.join(' '),
  });
/** Tessera (or a policy) refused: 403 without a scope hint. */
export const forbidden = (detail) => new GuardError(403, 'forbidden', detail);
/** Another tenant's object: the same answer as an object that does not exist. */
export const notFound = () => new GuardError(404, 'not_found', 'not found');
/** The guard cannot decide (feed not yet read, Tessera unreachable): fail closed. */
export const unavailable = (detail) => new GuardError(503, 'unavailable', detail);

/**
 * The HTTP answer for a refusal: `{status, headers, body}` (body is a JSON string).
 * @param {GuardError} e
 * @param {string} realm
 */
export function answer(e, realm) {
  const headers = { 'content-type': 'application/problem+json', 'cache-control': 'no-store' };
  if (e.status === 401 || e.bearer.error === 'insufficient_scope') {
    let v = `Bearer realm="${quoted(realm)}"`;
    if (e.bearer.error) v += `, error="${e.bearer.error}"`;
    if (e.bearer.error === 'invalid_token') v += `, error_description="${quoted(e.detail)}"`;
    if (e.bearer.scope) v += `, scope="${quoted(e.bearer.scope)}"`;
    headers['www-authenticate'] = v;
  }
  if (e.status === 503) headers['retry-after'] = '1';
  const body = JSON.stringify({
    type: `https://tessera.dev/problems/${e.code}`,
    title: TITLES[e.status] ?? 'Error',
    status: e.status,
    detail: e.detail,
    code: e.code,
  });
  return { status: e.status, headers, body };
}
