//! `/openapi.json`: the OpenAPI 3.1 document of `/v1`, generated from the route table and the
//! request/response types (JSON Schema 2020-12 via schemars), so it cannot drift from the code.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::http::routes::{Access, RouteSpec};

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
            "detail": { "type": "string" }, "code": { "type": "string" },
        },
    })
}

/// The id pattern of a path parameter or list cursor, by the object it names.
fn id_pattern(prefix: &str) -> Value {
    json!({ "type": "string", "pattern": format!("^{prefix}_[0-7][0-9A-HJKMNP-TV-Z]{{25}}$") })
}

fn param_schema(name: &str) -> Value {
    match name {
        "agy" | "acc" | "usr" | "key" | "bnd" | "rol" | "pol" | "rsv" | "whk" | "msg" => {
            id_pattern(name)
        }
        "id" => id_pattern("(usr|key)"),
        _ => json!({ "type": "string" }),
    }
}

/// The cursor of a list route: the id type of its items, or a sequence number for the audit log.
fn cursor_schema(path: &str) -> Value {
    let last = path.rsplit('/').next().unwrap_or_default();
    match last {
        "agencies" => id_pattern("agy"),
        "accounts" => id_pattern("acc"),
        "users" => id_pattern("usr"),
        "bindings" => id_pattern("bnd"),
        "api-keys" => id_pattern("key"),
        "roles" => id_pattern("rol"),
        "policies" => id_pattern("pol"),
        "principals" => id_pattern("(usr|key)"),
        "resource-servers" => id_pattern("rsv"),
        "webhooks" => id_pattern("whk"),
        "deliveries" => id_pattern("msg"),
        _ => json!({ "type": "string", "pattern": "^[0-9]{1,18}$" }),
    }
}

/// The query parameters a route reads beyond `limit` and `cursor`.
fn extra_query(r: &RouteSpec, catalog: &tessera_core::Catalog) -> Vec<Value> {
    let permissions: Vec<&str> = catalog
        .file()
        .permissions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let q = |name: &str, required: bool, schema: Value| json!({ "name": name, "in": "query", "required": required, "schema": schema });
    match (r.method.as_str(), r.path) {
        ("GET", "/v1/agencies/{agy}/accounts/{acc}/principals") => vec![
            q("permission", true, json!({ "enum": permissions })),
            q(
                "limit",
                false,
                json!({ "type": "integer", "minimum": 1, "maximum": 200 }),
            ),
            q("cursor", false, cursor_schema(r.path)),
        ],
        ("GET", "/v1/agencies/{agy}/principals/{id}/permissions") => {
            vec![q("account", false, id_pattern("acc"))]
        }
        ("GET", "/v1/agencies/{agy}/bindings") => {
            vec![q("principal", false, id_pattern("(usr|key)"))]
        }
        ("GET", "/v1/agencies/{agy}/audit") => vec![
            q(
                "after",
                false,
                json!({ "type": "string", "format": "date-time" }),
            ),
            q(
                "actor",
                false,
                json!({ "type": "string", "pattern": crate::http::routes::validate::NO_NUL_PATTERN }),
            ),
            q(
                "action",
                false,
                json!({ "type": "string", "pattern": crate::http::routes::validate::NO_NUL_PATTERN }),
            ),
        ],
        ("GET", "/v1/agencies/{agy}/audit/export") => vec![
            q(
                "from",
                false,
                json!({ "type": "string", "format": "date-time", "description": "Events at or after this time; the export starts at the signed checkpoint before the first of them." }),
            ),
            q(
                "to",
                false,
                json!({ "type": "string", "format": "date-time", "description": "Stop before the first event after this time." }),
            ),
            q(
                "cursor",
                false,
                json!({ "type": "string", "pattern": "^[0-9]{1,18}$", "description": "Resume: the `cursor` of the last line received; the export restarts at the signed checkpoint at or before it (lines up to the cursor may repeat)." }),
            ),
        ],
        ("GET", "/v1/agencies/{agy}/webhooks/{whk}/deliveries") => vec![q(
            "state",
            false,
            json!({ "enum": ["pending", "delivered", "dead"], "description": "Only messages in this state (`dead`: the dead-letter list)." }),
        )],
        ("DELETE", "/v1/agencies/{agy}/roles/{rol}") => vec![q(
            "remove_bindings",
            false,
            json!({ "enum": ["true", "false"] }),
        )],
        ("GET", "/v1/revocations") => vec![
            q(
                "since",
                false,
                json!({ "type": "string", "pattern": "^[0-9]{1,18}$", "description": "The cursor after which to read (`next` of the previous answer); absent: from the oldest entry retained." }),
            ),
            q(
                "limit",
                false,
                json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
            ),
            q(
                "wait",
                false,
                json!({ "type": "integer", "minimum": 0, "maximum": 60, "description": "Long-poll: when nothing is newer than `since`, wait up to this many seconds." }),
            ),
            json!({ "name": "Last-Event-ID", "in": "header", "required": false, "schema": { "type": "string", "pattern": "^[0-9]{1,18}$" }, "description": "Resumption (sent by SSE clients on reconnect; honoured on every request): like `since`, and wins over it." }),
        ],
        ("GET", "/v1/forward-auth") => vec![
            json!({ "name": "X-Original-Method", "in": "header", "required": true, "schema": { "type": "string" }, "description": "The proxied request's method." }),
            json!({ "name": "X-Original-URI", "in": "header", "required": true, "schema": { "type": "string" }, "description": "The proxied request's path and query, as received (nginx `$request_uri`)." }),
        ],
        _ => Vec::new(),
    }
}

/// Narrows request schemas with what only the catalog knows (scope, permission and role names).
fn apply_catalog(schemas: &mut Map<String, Value>, catalog: &tessera_core::Catalog) {
    let f = catalog.file();
    let scopes: Vec<&str> = f.scopes.iter().map(|s| s.name.as_str()).collect();
    let permissions: Vec<&str> = f.permissions.iter().map(|p| p.name.as_str()).collect();
    let roles: Vec<&str> = f.roles.iter().map(|r| r.name.as_str()).collect();
    let set = |schemas: &mut Map<String, Value>, ty: &str, field: &str, schema: Value| {
        if let Some(prop) = schemas
            .get_mut(ty)
            .and_then(|t| t.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
        {
            *prop = schema;
        }
    };
    set(
        schemas,
        "CreateKey",
        "scopes",
        json!({ "type": "array", "items": { "enum": scopes }, "description": "Catalog scopes." }),
    );
    set(
        schemas,
        "CreateResourceServer",
        "scopes",
        json!({ "type": "array", "minItems": 1, "maxItems": 100, "items": { "enum": scopes }, "description": "The catalog scopes the resource server serves." }),
    );
    let perms = json!({ "type": "array", "minItems": 1, "items": { "enum": permissions } });
    set(schemas, "CreateRole", "permissions", perms.clone());
    set(
        schemas,
        "UpdateRole",
        "permissions",
        json!({ "anyOf": [perms, { "type": "null" }] }),
    );
    set(
        schemas,
        "CreateBinding",
        "role",
        json!({ "anyOf": [{ "enum": roles }, id_pattern("rol")], "description": "A built-in role's name or a custom role's id." }),
    );
}

/// The rate-limit header fields (draft-ietf-httpapi-ratelimit-headers): on a success when a
/// limit applies, always on a 429 (with `Retry-After`).
fn rate_headers(limited: bool) -> Value {
    let mut h = json!({
        "RateLimit-Policy": { "description": "The tightest quota that applies: `\"<class>.<dimension>\";q=<limit>;w=<period seconds>`.", "schema": { "type": "string" } },
        "RateLimit": { "description": "Its level: `\"<class>.<dimension>\";r=<remaining>;t=<seconds until whole>`.", "schema": { "type": "string" } },
    });
    if limited {
        h["Retry-After"] = json!({ "description": "Seconds before a retry can be admitted (at least 1).", "schema": { "type": "integer", "minimum": 1 } });
    }
    h
}

/// What the revocation feed and forward auth answer beyond JSON (issue 11).
fn feed_extras(path: &str, op: &mut Value) {
    match path {
        "/v1/revocations" => {
            op["responses"]["410"] = json!({ "description": "`cursor_expired`: the cursor is older than the feed's retention; forget the revocation state and read again without `since`", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } });
            op["responses"]["200"]["content"]["text/event-stream"] = json!({ "schema": { "type": "string", "description": "With `Accept: text/event-stream`: one event per entry, `id: <cursor>`, `event: revocation`, `data: <RevocationItem JSON>`; a `: keepalive` comment at least every 15 s." } });
        }
        "/v1/agencies/{agy}/audit/export" => {
            op["responses"]["200"]["content"]["application/jsonl"] = json!({ "schema": { "type": "string", "description": "JSON Lines (docs/AUDIT.md \"Export\"). Each line has `type` and `cursor`: `event` lines carry every field of an audit event as stored (`seq`, `agency_id`, `id`, `at`, `actor`, `on_behalf_of`, `action`, `target`, `outcome`, `request_id`, `ip`, `user_agent`, `detail`, `prev_hash`, `hash`); `checkpoint` lines carry `agency_id`, `seq`, `hash`, `at`, `kid` and `signature` (Ed25519, base64url, over the canonical bytes in docs/AUDIT.md); the last line is `{\"type\":\"end\",\"cursor\":…,\"last_seq\":…}`. Without it the export was cut: resume with `?cursor=` the last cursor received. Verify offline with `tessera audit verify --export FILE --keys audit-keys.json`." } });
        }
        "/v1/forward-auth" => {
            let h = |d: &str| json!({ "description": d, "schema": { "type": "string" } });
            op["responses"]["200"]["headers"]["X-Tessera-Subject"] =
                h("The caller: `usr_…`, `key_…` or an app's client id.");
            op["responses"]["200"]["headers"]["X-Tessera-Agency"] = h("The agency acted in.");
            op["responses"]["200"]["headers"]["X-Tessera-Account"] =
                h("The account acted on, when one.");
            op["responses"]["200"]["headers"]["X-Tessera-Scopes"] =
                h("The credential's scopes, space-separated.");
            op["responses"]["200"]["headers"]["X-Tessera-Actor"] =
                h("The impersonator, for an impersonation token.");
        }
        _ => {}
    }
}

/// The compliance reports also answer CSV (issue 12): the media type and the paging headers.
fn csv_extras(path: &str, op: &mut Value) {
    if !(path.contains("/reports/") || path.ends_with("/users/{usr}/impersonations")) {
        return;
    }
    op["responses"]["200"]["content"]["text/csv"] = json!({ "schema": { "type": "string", "description": "With `Accept: text/csv`: RFC 4180 (CRLF, quoted fields), a header line then one line per row; a cell starting with `=`, `+`, `-`, `@`, TAB or CR is prefixed with `'` (no spreadsheet formula)." } });
    op["responses"]["200"]["headers"]["Tessera-Next-Cursor"] = json!({ "description": "CSV only: the cursor of the next page (absent on the last).", "schema": { "type": "string" } });
    op["responses"]["200"]["headers"]["Link"] = json!({ "description": "CSV only: `<…?cursor=…>; rel=\"next\"` (RFC 8288), absent on the last page.", "schema": { "type": "string" } });
}

/// Builds the document.
pub fn document(routes: &[RouteSpec], catalog: &tessera_core::Catalog) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas/".into())
        .into_generator();
    let mut paths = Map::new();
    for r in routes {
        let mut params = Vec::new();
        for seg in r.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                params.push(json!({ "name": name, "in": "path", "required": true, "schema": param_schema(name) }));
            }
        }
        if r.method == axum::http::Method::GET
            && r.response
                .is_some_and(|_| r.summary.starts_with("List") || r.path.ends_with("/audit"))
        {
            params.push(json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 200 } }));
            params
                .push(json!({ "name": "cursor", "in": "query", "schema": cursor_schema(r.path) }));
        }
        params.extend(extra_query(r, catalog));
        let (permission, description) = match r.access {
            Access::Permission(p, _) => (json!(p), format!("Requires the `{p}` permission.")),
            Access::Platform(p) => (
                json!(p),
                format!("Requires the `{p}` permission in the platform tenant."),
            ),
            Access::Authenticated => (Value::Null, "Requires any valid credential.".to_owned()),
        };
        let problem = json!({ "description": "error", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } });
        let mut responses = Map::new();
        let ok = match r.response {
            Some(f) => {
                json!({ "description": "success", "content": { "application/json": { "schema": f(&mut generator) } } })
            }
            None => json!({ "description": "success" }),
        };
        let mut ok = ok;
        ok["headers"] = rate_headers(false);
        responses.insert(r.status.to_string(), ok);
        for code in ["400", "401", "403", "404", "409", "503"] {
            responses.insert(code.to_owned(), problem.clone());
        }
        // Rate limits (README "Rate limits"): 429 with Retry-After and the IETF fields.
        let mut limited = json!({ "description": "rate limited (`rate_limited`): retry after `Retry-After` seconds", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } });
        limited["headers"] = rate_headers(true);
        responses.insert("429".to_owned(), limited);
        if r.request.is_some() {
            for code in ["413", "415"] {
                responses.insert(code.to_owned(), problem.clone());
            }
        }
        let mut op = json!({
            "summary": r.summary,
            "description": description,
            "operationId": format!("{}_{}", r.method.as_str().to_lowercase(), r.path.trim_start_matches('/').replace(['/', '{', '}', '-'], "_")),
            "parameters": params,
            "responses": responses,
            "security": [{ "bearer": [] }],
            "x-permission": permission,
        });
        feed_extras(r.path, &mut op);
        csv_extras(r.path, &mut op);
        if let (Some(f), Some(obj)) = (r.request, op.as_object_mut()) {
            obj.insert("requestBody".into(), json!({ "required": true, "content": { "application/json": { "schema": f(&mut generator) } } }));
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        if let Some(obj) = entry.as_object_mut() {
            obj.insert(r.method.as_str().to_lowercase(), op);
        }
    }
    paths.insert(
        "/.well-known/audit-keys.json".into(),
        json!({ "get": {
            "summary": "The public keys that verify audit checkpoints (JWKS: OKP, Ed25519, EdDSA, `use: sig`): every key that signs, will sign (published two days before) or ever signed (kept after retirement, as its checkpoints are). Public, cacheable for 5 minutes.",
            "operationId": "get_well_known_audit_keys_json",
            "security": [],
            "responses": { "200": { "description": "success", "headers": { "Cache-Control": { "schema": { "type": "string" }, "description": "`public, max-age=300`" } }, "content": { "application/json": { "schema": {
                "type": "object", "required": ["keys"],
                "properties": { "keys": { "type": "array", "items": {
                    "type": "object", "required": ["kty", "crv", "alg", "use", "kid", "x"],
                    "properties": {
                        "kty": { "const": "OKP" }, "crv": { "const": "Ed25519" }, "alg": { "const": "EdDSA" },
                        "use": { "const": "sig" }, "kid": { "type": "string" },
                        "x": { "type": "string", "description": "The public key, base64url (RFC 8037)." }
                    } } } } } } } } }
        } }),
    );
    let mut schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    apply_catalog(&mut schemas, catalog);
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Tessera", "version": env!("CARGO_PKG_VERSION"), "description": "Identity, token and authorization server for multi-tenant SaaS platforms. Access tokens are bound to a registered resource server with `resource=<identifier>` (RFC 8707) at `/oauth/authorize` and `/oauth/token` (every grant, and token exchange): their `aud` is that identifier and their scopes are limited to what it serves; an unknown resource, another agency's, or several different ones is `invalid_target`. Without `resource`, `aud` is the issuer, and only such tokens are accepted as credentials by this API." },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "An API key (`tsk_…`) or an access token." } },
        },
    })
}
