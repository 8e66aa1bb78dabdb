// The guard: authenticates a request's bearer credential (a JWT verified locally, or an API key
// introspected), applies the revocation feed, and authorizes it against a route's declaration
// (scope → permission through Tessera's catalog, the tenant, and ABAC through `/v1/check`).
// Framework adapters (express.js, fastify.js) only move a request in and an answer out.
//
// INVARIANTS: deny by default — a route needs a declaration, an unknown permission fails at
// start; JWTs are refused (503) until the revocation feed has been read once and while it is
// silent; anything the guard cannot decide is 503, never a pass.

import { jwtVerify, errors as joseErrors } from 'jose';

import { ApiKeys, looksLikeApiKey } from './apikeys.js';
import * as E from './errors.js';
import { Jwks, JwksUnavailable } from './jwks.js';
import { RevocationFeed } from './revocations.js';

const MAX_CREDENTIAL = 8192;
const ALGORITHMS = ['EdDSA', 'ES256', 'RS256'];
const PERMISSION = /^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/;

const trimSlash = (s) => s.replace(/\/+$/, '');

/** Validates a route declaration's shape; throws a TypeError naming the route. */
export function validateDeclaration(decl, where) {
  if (!decl || typeof decl !== 'object' || Array.isArray(decl))
    throw new TypeError(`${where}: every route declares its permission ({ permission } or { public: true })`);
  if (decl.public === true) {
    if (decl.permission !== undefined) throw new TypeError(`${where}: a public route declares no permission`);
    return decl;
  }
  if (typeof decl.permission !== 'string' || !PERMISSION.test(decl.permission))
    throw new TypeError(`${where}: \`permission\` must be a catalog permission such as \`contacts.read\``);
  for (const f of ['tenant', 'resource'])
    if (decl[f] !== undefined && typeof decl[f] !== 'function')
      throw new TypeError(`${where}: \`${f}\` must be a function of the request`);
  return decl;
}

export class Guard {
  /** @param {import('./index.d.ts').GuardOptions} o */
  constructor(o) {
    if (!o || typeof o.issuer !== 'string') throw new TypeError('`issuer` is required');
    if (typeof o.audience !== 'string' || !o.audience) throw new TypeError('`audience` (this service\'s resource identifier) is required');
    this.issuer = trimSlash(o.issuer);
    this.audience = o.audience;
    this.realm = o.realm ?? o.audience;
    this.leeway = o.leewaySeconds ?? 30;
    this.algorithms = o.algorithms ?? ALGORITHMS;
    this.now = o.now ?? Date.now;
    this.clock = o.now !== undefined;
    const credential = o.credential;
    const auth = () => ({ authorization: `Bearer ${credential}` });
    this.authHeaders = auth;
    if (!credential && (o.revocations?.mode !== 'off' || o.apiKeys !== false))
      throw new TypeError('`credential` (the guard\'s own API key, with `revocations.read`) is required');
    this.jwks = new Jwks(o.jwksUri ?? `${this.issuer}/.well-known/jwks.json`, {
      cooldownMs: (o.jwksCooldownSeconds ?? 30) * 1000,
      now: this.now,
    });
    this.verifyOptions = {
      issuer: this.issuer,
      audience: this.audience,
      typ: 'at+jwt',
      clockTolerance: this.leeway,
      algorithms: this.algorithms,
      requiredClaims: ['exp', 'sub', 'jti'],
    };
    this.apiKeys =
      o.apiKeys === false
        ? null
        : new ApiKeys({
            url: `${this.issuer}/oauth/introspect`,
            headers: auth,
            positiveMs: (o.apiKeys?.positiveSeconds ?? 10) * 1000,
            negativeMs: (o.apiKeys?.negativeSeconds ?? 2) * 1000,
            now: this.now,
          });
    const mode = o.revocations?.mode ?? 'sse';
    this.feed =
      mode === 'off'
        ? null
        : new RevocationFeed({
            url: o.revocations?.url ?? `${this.issuer}/v1/revocations`,
            headers: auth,
            mode,
            staleAfterMs: (o.revocations?.staleAfterSeconds ?? 45) * 1000,
            onApiKey: (id) => this.apiKeys?.forget(id),
            onChange: () => this.checks.clear(),
            onError: o.onError ?? ((e) => console.warn(`tessera guard: ${e.message}`)),
            now: this.now,
          });
    this.verifiedMax = o.verifiedCache === false ? 0 : (o.verifiedCache?.maxEntries ?? 10_000);
    /** @type {Map<string, {payload: object, until: number}> | null} verified tokens */
    this.verified = this.verifiedMax > 0 ? new Map() : null;
    this.checkTtlMs = (o.checks?.ttlSeconds ?? 30) * 1000;
    /** @type {Map<string, {allowed: boolean, reason: string, revision: number, at: number}>} */
    this.checks = new Map();
    this.revision = 0;
    this.scopeGrants = null; // scope → Set(permissions), from the catalog
    this.permissionScopes = null; // permission → [scopes]
    this.declared = new Set();
    this.started = null;
  }

  /**
   * Loads the catalog and the JWKS, and reads the revocation feed once. Rejects if a declared
   * permission is not in the catalog (the service must not start).
   */
  start() {
    this.started ??= (async () => {
      await this.loadCatalog();
      await this.jwks.refresh();
      this.assertDeclared();
      if (this.feed) await this.feed.start();
    })();
    return this.started;
  }

  close() {
    this.feed?.close();
    clearInterval(this.catalogTimer);
  }

  async loadCatalog() {
    const r = await fetch(`${this.issuer}/v1/catalog`, {
      headers: { ...this.authHeaders(), accept: 'application/json' },
      signal: AbortSignal.timeout(10_000),
    });
    if (!r.ok) throw new Error(`GET /v1/catalog answered ${r.status}`);
    const c = await r.json();
    const grants = new Map();
    const reverse = new Map();
    for (const p of c.permissions ?? []) reverse.set(typeof p === 'string' ? p : p.name, []);
    const internal = new Map();
    for (const s of c.scopes ?? []) {
      grants.set(s.name, new Set(s.permissions));
      // The hint in `insufficient_scope` names the public and partner scopes that grant a
      // permission; internal ones only when nothing else does.
      const into = s.audience === 'internal' ? internal : reverse;
      for (const p of s.permissions) {
        if (!reverse.has(p)) reverse.set(p, []);
        (into.get(p) ?? into.set(p, []).get(p)).push(s.name);
      }
    }
    for (const [p, list] of internal) if (reverse.get(p).length === 0) reverse.set(p, list);
    this.scopeGrants = grants;
    this.permissionScopes = reverse;
    if (!this.catalogTimer) {
      this.catalogTimer = setInterval(() => this.loadCatalog().catch(() => {}), 600_000);
      this.catalogTimer.unref?.();
    }
  }

  assertDeclared() {
    const unknown = [...this.declared].filter((p) => !this.permissionScopes.has(p));
    if (unknown.length) throw new Error(`permissions not in Tessera's catalog: ${unknown.join(', ')}`);
  }

  /** Records a route's declaration (validated now; its permission against the catalog at start). */
  declare(decl, where) {
    validateDeclaration(decl, where);
    if (decl.permission) {
      this.declared.add(decl.permission);
      if (this.permissionScopes && !this.permissionScopes.has(decl.permission))
        throw new TypeError(`${where}: \`${decl.permission}\` is not in Tessera's catalog`);
    }
    return decl;
  }

  /** The bearer credential of an `Authorization` header value; throws 401 if absent. */
  static bearer(header) {
    if (typeof header !== 'string' || header.length === 0) throw E.missing();
    const sp = header.indexOf(' ');
    if (sp < 0 || header.slice(0, sp).toLowerCase() !== 'bearer') throw E.missing();
    const token = header.slice(sp + 1).trim();
    if (!token) throw E.missing();
    if (token.length > MAX_CREDENTIAL) throw E.invalidToken('the credential is too long');
    return token;
  }

  /** Authenticates an `Authorization` header value: the principal, or a thrown GuardError. */
  async authenticate(header) {
    const token = Guard.bearer(header);
    if (looksLikeApiKey(token)) return this.authenticateApiKey(token);
    return this.verifyJwt(token);
  }

  /**
   * Verifies an access token locally and applies the revocation feed. A verified token is
   * cached (keyed by the whole token, so by its signature) until `exp` + leeway: a repeat skips
   * the signature check, never the expiry or the revocation checks.
   */
  async verifyJwt(token) {
    if (this.feed && !this.feed.ready) throw E.unavailable('the revocation feed has not been read yet');
    const nowS = this.now() / 1000;
    const hit = this.verified?.get(token);
    let payload;
    if (hit !== undefined && hit.until > nowS) payload = hit.payload;
    else {
      try {
        const opts = this.clock ? { ...this.verifyOptions, currentDate: new Date(this.now()) } : this.verifyOptions;
        ({ payload } = await jwtVerify(token, this.jwks.getKey, opts));
      } catch (e) {
        if (e instanceof JwksUnavailable) throw E.unavailable('the issuer\'s keys could not be fetched');
        throw E.invalidToken(jwtReason(e));
      }
      const t = payload.tenant;
      if (!t || typeof t !== 'object' || typeof t.agency !== 'string') throw E.invalidToken('the token has no tenant');
      if (typeof payload.sub !== 'string' || typeof payload.jti !== 'string') throw E.invalidToken('malformed token');
      if (this.verified && typeof payload.exp === 'number' && !(payload.nbf > nowS)) this.remember(token, payload);
    }
    const t = payload.tenant;
    const p = new Principal({
      kind: 'access_token',
      subject: payload.sub,
      tenant: { agency: t.agency, account: typeof t.account === 'string' ? t.account : undefined },
      scope: payload.scope,
      act: payload.act && typeof payload.act === 'object' ? payload.act : undefined,
      installation: typeof payload.ins === 'string' ? payload.ins : undefined,
      clientId: typeof payload.client_id === 'string' ? payload.client_id : undefined,
      tokenId: payload.jti,
      grant: typeof payload.sid === 'string' ? payload.sid : undefined,
      expiresAt: payload.exp,
      claims: payload,
    });
    this.refuseRevoked(p);
    return p;
  }

  remember(token, payload) {
    const m = this.verified;
    if (m.size >= this.verifiedMax) {
      // Drop the oldest eighth (a Map iterates in insertion order).
      let n = Math.ceil(this.verifiedMax / 8);
      for (const k of m.keys()) {
        if (n-- <= 0) break;
        m.delete(k);
      }
    }
    m.set(token, { payload: Object.freeze(payload), until: payload.exp + this.leeway });
  }

  refuseRevoked(p) {
    if (!this.feed) return;
    const why = this.feed.state.refusal(p, Math.floor(this.now() / 1000) - this.leeway);
    if (why) throw E.invalidToken(why);
  }

  async authenticateApiKey(secret) {
    if (!this.apiKeys) throw E.invalidToken('API keys are not accepted here');
    let a;
    try {
      a = await this.apiKeys.check(secret);
    } catch {
      throw E.unavailable('Tessera could not be asked about the API key');
    }
    if (!a) throw E.invalidToken('the API key is not active');
    const p = new Principal({
      kind: 'api_key',
      subject: a.sub,
      tenant: { agency: a.tenant.agency, account: a.tenant.account ?? undefined },
      scope: a.scope,
      keyId: a.sub,
      expiresAt: a.exp,
      claims: a,
    });
    // Suspensions and disabled users reach cached answers through the feed too.
    this.refuseRevoked(p);
    return p;
  }

  /** The scopes that would grant `permission`. */
  scopesFor(permission) {
    return this.permissionScopes?.get(permission) ?? [];
  }

  /** Whether the principal's scopes grant `permission` (through the catalog). */
  grants(principal, permission) {
    if (!this.scopeGrants) return false;
    for (const s of principal.scopes) if (this.scopeGrants.get(s)?.has(permission)) return true;
    return false;
  }

  /**
   * Authorizes an authenticated principal for a declared route: the permission (scopes), the
   * tenant (another tenant's object is 404), then ABAC through `/v1/check` if the route names
   * its resource. Throws a GuardError.
   */
  async authorize(principal, decl, req) {
    if (decl.public) return;
    if (!this.grants(principal, decl.permission))
      throw E.insufficientScope(decl.permission, this.scopesFor(decl.permission));
    const where = decl.tenant ? decl.tenant(req) : undefined;
    if (where) {
      if (where.agency !== undefined && where.agency !== principal.tenant.agency) throw E.notFound();
      if (where.account !== undefined && principal.tenant.account !== undefined && where.account !== principal.tenant.account)
        throw E.notFound();
    }
    if (decl.resource) {
      const res = decl.resource(req);
      if (res) {
        const d = await this.check(principal, decl.permission, {
          type: res.type,
          id: res.id,
          agency: where?.agency ?? principal.tenant.agency,
          account: where?.account ?? principal.tenant.account,
          attributes: res.attributes,
        });
        if (!d.allowed) throw E.forbidden(`\`${decl.permission}\` is not allowed here (${d.reason})`);
      }
    }
  }

  /**
   * Asks Tessera (`POST /v1/check`) whether the principal may exercise `permission` on
   * `resource`. Answers are cached for `checks.ttlSeconds` while no newer revision has been seen
   * (any answer with a higher revision, or any revocation-feed item, retires older ones).
   * Principals Tessera cannot be asked about (an app's client-credentials token) are decided by
   * their scopes and tenant alone.
   */
  async check(principal, permission, resource, context = {}) {
    const sub = principal.subject;
    if (!/^(usr|key)_/.test(sub)) return { allowed: true, revision: this.revision, reason: 'app_scopes' };
    const ctx = { impersonating: principal.act !== undefined, ...context };
    const body = { principal: sub, permission, resource: clean(resource), context: ctx };
    const key = JSON.stringify(body);
    const now = this.now();
    const hit = this.checks.get(key);
    if (hit && hit.revision >= this.revision && now - hit.at < this.checkTtlMs) return hit;
    let r;
    try {
      r = await fetch(`${this.issuer}/v1/check`, {
        method: 'POST',
        headers: { ...this.authHeaders(), 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(this.revision ? { ...body, at_least_revision: this.revision } : body),
        signal: AbortSignal.timeout(5_000),
      });
    } catch {
      throw E.unavailable('Tessera could not be asked');
    }
    if (r.status >= 500 || r.status === 401 || r.status === 429) throw E.unavailable(`Tessera's check answered ${r.status}`);
    if (!r.ok) return { allowed: false, revision: this.revision, reason: `check_refused_${r.status}` };
    const d = await r.json();
    const entry = { allowed: d.allowed === true, reason: String(d.reason ?? ''), revision: Number(d.revision) || 0, at: this.now() };
    if (entry.revision > this.revision) this.revision = entry.revision;
    if (this.checks.size >= 10_000) this.checks.clear();
    this.checks.set(key, entry);
    return entry;
  }

  /** Authenticates and authorizes one request: the principal, or a thrown GuardError. */
  async guard(header, decl, req) {
    const p = await this.authenticate(header);
    await this.authorize(p, decl, req);
    return p;
  }

  /** The HTTP answer `{status, headers, body}` for an error thrown by the guard. */
  answer(e) {
    if (!(e instanceof E.GuardError)) e = E.unavailable('the guard failed');
    return E.answer(e, this.realm);
  }
}

const clean = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

function jwtReason(e) {
  if (e instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return 'the token is not for this service';
    if (e.claim === 'iss') return 'the token is from another issuer';
    if (e.claim === 'typ') return 'not an access token';
    if (e.claim === 'nbf') return 'the token is not yet valid';
    return `the token's \`${e.claim}\` is invalid`;
  }
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'the signature does not verify';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'no key matches the token';
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'the algorithm is not allowed';
  return 'malformed token';
}

/** Who is calling: the subject, its tenant, scopes, actor chain and installation. */
export class Principal {
  constructor(f) {
    /** `access_token` or `api_key`. */
    this.kind = f.kind;
    /** `usr_…`, `app_…` (client credentials) or `key_…`. */
    this.subject = f.subject;
    /** `{agency, account?}` */
    this.tenant = f.tenant;
    /** Granted scopes. */
    this.scopes = typeof f.scope === 'string' && f.scope ? f.scope.split(' ') : [];
    /** `{sub, act?}`: who acts as the subject (impersonation, delegation). */
    this.act = f.act;
    /** `ins_…`, when the token came through an installation. */
    this.installation = f.installation;
    /** The app (`client_id`) of an access token. */
    this.clientId = f.clientId;
    /** The token's `jti`. */
    this.tokenId = f.tokenId;
    /** The grant (`sid`) of a user token. */
    this.grant = f.grant;
    /** `key_…` of an API key. */
    this.keyId = f.keyId;
    /** Unix seconds. */
    this.expiresAt = f.expiresAt;
    /** The verified claims, or the introspection answer. */
    this.claims = f.claims;
  }

  /** The actor chain, outermost first (`act.sub`, `act.act.sub`, …). */
  get actors() {
    const out = [];
    for (let a = this.act; a && typeof a === 'object'; a = a.act) out.push(a.sub);
    return out;
  }
}
