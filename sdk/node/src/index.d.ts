// Types of @tessera/guard (hand-written; the package is plain ESM JavaScript).

/** Where a route's tenant is in the request. Another tenant's object answers 404. */
export interface TenantRef {
  agency?: string;
  account?: string;
}

/** The object a route acts on, for ABAC checks through `POST /v1/check`. */
export interface ResourceRef {
  /** A catalog resource type, such as `contact`. */
  type: string;
  id?: string;
  /** Attributes Cedar policies may read. */
  attributes?: Record<string, unknown>;
}

/** A protected route: the permission it needs, and optionally where its tenant and resource are. */
export interface ProtectedRoute<Req = any> {
  /** A catalog permission such as `contacts.read`; the credential's scopes must grant it. */
  permission: string;
  tenant?: (req: Req) => TenantRef | undefined;
  /** When given, Tessera is asked (`/v1/check`, cached per revision). */
  resource?: (req: Req) => ResourceRef | undefined;
  public?: never;
}

/** A route that anyone may call: declared explicitly, never by omission. */
export interface PublicRoute {
  public: true;
  permission?: never;
}

export type RouteDeclaration<Req = any> = ProtectedRoute<Req> | PublicRoute;

export interface Actor {
  sub: string;
  act?: Actor;
}

/** Who is calling. */
export declare class Principal {
  readonly kind: 'access_token' | 'api_key';
  /** `usr_…`, `app_…` (client credentials) or `key_…` (API key). */
  readonly subject: string;
  readonly tenant: { agency: string; account?: string };
  readonly scopes: string[];
  /** Who acts as the subject (impersonation, delegation). */
  readonly act?: Actor;
  /** The actor chain, outermost first. */
  readonly actors: string[];
  /** `ins_…`, when the token came through an installation. */
  readonly installation?: string;
  readonly clientId?: string;
  /** The token's `jti`. */
  readonly tokenId?: string;
  /** The grant (`sid`) of a user token. */
  readonly grant?: string;
  /** `key_…` of an API key. */
  readonly keyId?: string;
  /** Unix seconds. */
  readonly expiresAt?: number;
  /** The verified JWT claims, or the introspection answer. */
  readonly claims: Record<string, unknown>;
}

export interface GuardOptions {
  /** Tessera's issuer URL (`iss` of its tokens, base of its API). */
  issuer: string;
  /** This service's resource identifier: tokens must carry it as `aud`. */
  audience: string;
  /** The guard's own API key (`tsk_…`, scope `revocations.readonly`): the revocation feed,
   *  introspection, the catalog, and `/v1/check` (`bindings.read` to ask about callers). */
  credential?: string;
  /** `realm` of `WWW-Authenticate` (default: the audience). */
  realm?: string;
  /** Clock leeway for `exp`/`nbf` and for feed entries, seconds (default 30). */
  leewaySeconds?: number;
  /** Accepted JWS algorithms (default EdDSA, ES256, RS256; each key is used with its own alg only). */
  algorithms?: string[];
  /** Default `<issuer>/.well-known/jwks.json`. */
  jwksUri?: string;
  /** The least time between two JWKS fetches caused by an unknown `kid` (default 30). */
  jwksCooldownSeconds?: number;
  revocations?: {
    /** `sse` (default), `poll` (long-poll), or `off` (no revocation: revoked JWTs pass until they expire). */
    mode?: 'sse' | 'poll' | 'off';
    /** Default `<issuer>/v1/revocations`. */
    url?: string;
    /** JWTs are refused (503) when the feed has been silent this long (default 45). */
    staleAfterSeconds?: number;
  };
  /** Introspection caches for API keys, seconds (default 10 positive, 2 negative); `false` refuses API keys. */
  apiKeys?: false | { positiveSeconds?: number; negativeSeconds?: number };
  checks?: { ttlSeconds?: number };
  /** Verified tokens are cached until `exp` + leeway (default 10,000 entries); `false` verifies
   *  every request's signature. Expiry and revocation are checked on every request either way. */
  verifiedCache?: false | { maxEntries?: number };
  /** Called when the revocation feed fails (it retries with backoff). */
  onError?: (e: Error) => void;
  /** The clock, milliseconds (tests). */
  now?: () => number;
}

/** A refusal: 401, 403, 404 or 503. */
export declare class GuardError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface ExpressRoutes {
  get(path: string, decl: RouteDeclaration, ...handlers: any[]): ExpressRoutes;
  post(path: string, decl: RouteDeclaration, ...handlers: any[]): ExpressRoutes;
  put(path: string, decl: RouteDeclaration, ...handlers: any[]): ExpressRoutes;
  patch(path: string, decl: RouteDeclaration, ...handlers: any[]): ExpressRoutes;
  delete(path: string, decl: RouteDeclaration, ...handlers: any[]): ExpressRoutes;
  head(path: string, decl: RouteDeclaration, ...handlers: any[]): ExpressRoutes;
  options(path: string, decl: RouteDeclaration, ...handlers: any[]): ExpressRoutes;
  all(path: string, decl: RouteDeclaration, ...handlers: any[]): ExpressRoutes;
  readonly target: any;
}

export declare class Guard {
  constructor(options: GuardOptions);
  /** Loads the catalog and JWKS and reads the revocation feed once; rejects if a declared
   *  permission is not in the catalog. */
  start(): Promise<void>;
  close(): void;
  /** Authenticates an `Authorization` header value. Throws GuardError. */
  authenticate(authorization: string | undefined): Promise<Principal>;
  /** Verifies an access token (JWT) locally and applies the revocation feed. */
  verifyJwt(token: string): Promise<Principal>;
  /** Authorizes a principal for a route declaration. Throws GuardError. */
  authorize(principal: Principal, decl: RouteDeclaration, req: unknown): Promise<void>;
  /** Whether the principal's scopes grant a permission (through Tessera's catalog). */
  grants(principal: Principal, permission: string): boolean;
  /** `POST /v1/check`, cached per revision. */
  check(
    principal: Principal,
    permission: string,
    resource: ResourceRef & TenantRef,
    context?: Record<string, unknown>,
  ): Promise<{ allowed: boolean; reason: string; revision: number }>;
  /** The HTTP answer for a thrown error. */
  answer(e: unknown): Answer;
}

export declare class TesseraGuard extends Guard {
  /** Fastify plugin: `await app.register(guard.fastify)` before the routes; each route then needs
   *  `config: { tessera: RouteDeclaration }` or registration throws. Sets `request.principal`. */
  readonly fastify: (fastify: any, opts?: unknown) => Promise<void>;
  /** Express middleware for one declaration; sets `req.principal`. */
  express(decl: RouteDeclaration): (req: any, res: any, next: (err?: unknown) => void) => void;
  /** Express route builder over an app or Router: a route without a declaration throws at registration. */
  routes(appOrRouter: any): ExpressRoutes;
}

export declare function createGuard(options: GuardOptions): TesseraGuard;
export declare function validateDeclaration<T extends RouteDeclaration>(decl: T, where: string): T;
